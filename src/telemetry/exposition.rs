//! The metrics exposition in the classic Prometheus text format, for the scrapers and tools
//! that do not ask for OpenMetrics.

/// The classic Prometheus text format (0.0.4) of an OpenMetrics exposition, for scrapers and
/// tools that do not ask for OpenMetrics. The two differ, for what silo exports, only in how a
/// counter is declared: OpenMetrics names the family `x` and its sample `x_total`, the classic
/// format declares `x_total` itself. `# UNIT` and `# EOF` exist only in OpenMetrics.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut text = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), kind),
                // The classic format's name for a family of no known type.
                "unknown" => (name.to_owned(), "untyped"),
                _ => (name.to_owned(), kind),
            };
            if let Some(help) = help.take() {
                let text_of_help = help.split_once(' ').map_or("", |(_, text)| text);
                text.push_str(&format!("# HELP {name} {text_of_help}\n"));
            }
            text.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{Metrics, ServerConnections};

    /// Every sample belongs to a family declared under its own name (histograms by their
    /// `_bucket`, `_sum` and `_count`), as a classic-format parser requires.
    #[test]
    fn the_classic_format_declares_every_sample_under_its_own_name() {
        let metrics = Metrics::default();
        metrics.registry_lookup(true);
        metrics.provisioned(true);
        let text = to_prometheus_text(&metrics.render(
            2,
            &[ServerConnections {
                server: "local".into(),
                held: 1,
                reserved: 4,
                budget: 200,
            }],
        ));
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        let mut declared = std::collections::HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                declared.insert(name.to_owned(), kind.to_owned());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split_once(' ').unwrap().0;
                assert!(!name.is_empty(), "{line}");
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| {
                        let base = name.strip_suffix(suffix)?;
                        (declared.get(base).map(String::as_str) == Some("histogram"))
                            .then_some(base)
                    })
                    .unwrap_or(name);
                assert!(
                    declared.contains_key(family),
                    "{line} is undeclared in\n{text}"
                );
            }
        }
        assert_eq!(declared["silo_registry_cache_hits_total"], "counter");
        assert_eq!(declared["silo_tenant_pools_open"], "gauge");
        assert!(
            text.contains("silo_registry_cache_hits_total 1\n"),
            "{text}"
        );
        assert!(text.contains("silo_tenant_pools_open 2\n"), "{text}");
        assert!(
            text.contains("silo_provisioning_total{outcome=\"failed\"} 0\n"),
            "{text}"
        );
    }
}
