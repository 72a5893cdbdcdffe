-- Rows every new pro tenant starts with.
INSERT INTO settings (key, value) VALUES ('plan', 'pro');
INSERT INTO settings (key, value) VALUES ('max_projects', '10000');
