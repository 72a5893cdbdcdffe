-- Rows every new free tenant starts with.
INSERT INTO settings (key, value) VALUES ('plan', 'free');
INSERT INTO settings (key, value) VALUES ('max_projects', '100');
