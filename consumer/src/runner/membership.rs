//! How an instance joins its consumer group: as a static member (KIP-345, `group.instance.id`),
//! which takes its partitions back at once when it restarts, or as a dynamic one, which is a
//! new member at every start.
//!
//! A SIGKILLed dynamic member holds its partitions until the broker notices it is gone
//! (`session.timeout.ms`, 45 s by default) and the group rebalances; a static member started
//! again with the same `group.instance.id` replaces its old self at once and gets the same
//! assignment back, with no rebalance. The times measured for both, and for the KIP-848
//! protocol (`group.protocol=consumer`), are in docs/benchmarks.md ("Recovery").
//!
//! The cost of static membership: a member that stops for good (scale-down) is not replaced
//! until its session times out, since a static member sends no LeaveGroup on close; and two
//! live instances with the same id fence each other (the older one fails with
//! `FENCED_INSTANCE_ID`). An instance id must therefore be unique within its group and stable
//! across restarts of the same instance: the default, `<host name>-<group>`, is when there is
//! one instance per group per host (a container, a pod, a systemd unit per host); several on
//! one host need `--instance-id` each (e.g. a systemd template's `%i`).

use clap::ValueEnum;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::ClientConfig;

/// How this instance joins its group (`--membership`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Membership {
    /// A `group.instance.id` that survives restarts: a restarted member gets its partitions
    /// back at once.
    #[default]
    Static,
    /// A new member id at every start; partitions of a crashed member wait for its session
    /// to time out.
    Dynamic,
}

/// Kafka's alphabet for a `group.instance.id` (the broker's `JoinGroupRequest.validateGroupInstanceId`,
/// the same rule as for topic names).
fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Parses `--instance-id`: 1 to 249 characters of ASCII letters, digits, `.`, `_` and `-`.
///
/// # Errors
/// An empty or longer id, or another character, with what is allowed.
pub fn parse_instance_id(id: &str) -> Result<String, String> {
    if id.is_empty() || id.len() > 249 || !id.chars().all(is_id_char) {
        return Err(format!(
            "'{id}' is not a group.instance.id: use 1 to 249 of ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(id.to_owned())
}

/// The `group.instance.id` for `membership`: `explicit` (`--instance-id`) when given, else
/// `<host>-<group>`, with every character outside Kafka's id alphabet (ASCII letters, digits,
/// `.`, `_`, `-`) replaced by `_`; `None` for dynamic membership.
pub fn instance_id(
    membership: Membership,
    explicit: Option<&str>,
    host: &str,
    group: &str,
) -> Option<String> {
    match membership {
        Membership::Dynamic => None,
        Membership::Static => Some(match explicit {
            Some(id) => id.to_owned(),
            None => format!("{host}-{group}")
                .chars()
                .map(|c| if is_id_char(c) { c } else { '_' })
                .take(249)
                .collect(),
        }),
    }
}

/// Sets `group.instance.id` on `config` for `membership`, unless the user set it (`-X`,
/// `--kafka-config`), whose properties win as everywhere else.
pub fn apply(
    config: &mut ClientConfig,
    membership: Membership,
    explicit: Option<&str>,
    group: &str,
) {
    if config.get("group.instance.id").is_some() {
        return;
    }
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy();
    if let Some(id) = instance_id(membership, explicit, &host, group) {
        config.set("group.instance.id", id);
    }
}

/// What a fatal client error (librdkafka INTRODUCTION.md, "Fatal consumer errors") means for
/// the operator: the two that membership causes say what to do; others name the code.
pub fn explain_fatal(code: RDKafkaErrorCode, reason: &str) -> anyhow::Error {
    match code {
        RDKafkaErrorCode::FencedInstanceId => anyhow::anyhow!(
            "fenced out of the consumer group: another instance joined with this one's \
             group.instance.id ({reason}); give each instance of a group its own --instance-id, \
             or use --membership dynamic"
        ),
        // KIP-848 (`group.protocol=consumer`): a static member's id stays taken until the broker
        // sees the old member leave or its session expire.
        RDKafkaErrorCode::UnreleasedInstanceId => anyhow::anyhow!(
            "the consumer group still holds this instance's group.instance.id for a previous \
             member ({reason}): with group.protocol=consumer a SIGKILLed static member's id is \
             released only when its session expires (45 s by default); start again then, or \
             use the classic protocol, which hands it over at once"
        ),
        code => anyhow::anyhow!("fatal Kafka client error {code:?}: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_membership_defaults_to_host_and_group() {
        assert_eq!(
            instance_id(Membership::Static, None, "web-1.example", "analysis").as_deref(),
            Some("web-1.example-analysis")
        );
        assert_eq!(
            instance_id(Membership::Static, None, "host name", "grp:1").as_deref(),
            Some("host_name-grp_1")
        );
    }

    #[test]
    fn an_explicit_id_wins_and_dynamic_has_none() {
        assert_eq!(
            instance_id(Membership::Static, Some("a-2"), "h", "g").as_deref(),
            Some("a-2")
        );
        assert_eq!(
            instance_id(Membership::Dynamic, Some("a-2"), "h", "g"),
            None
        );
    }

    #[test]
    fn instance_ids_are_checked() {
        assert_eq!(parse_instance_id("analysis-2").as_deref(), Ok("analysis-2"));
        for bad in ["", "a b", "a/b", &"x".repeat(250)] {
            assert!(parse_instance_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fencing_says_what_to_do() {
        let fenced = explain_fatal(RDKafkaErrorCode::FencedInstanceId, "fenced").to_string();
        assert!(fenced.contains("--instance-id"), "{fenced}");
        let unreleased =
            explain_fatal(RDKafkaErrorCode::UnreleasedInstanceId, "in use").to_string();
        assert!(unreleased.contains("session expires"), "{unreleased}");
        let other = explain_fatal(RDKafkaErrorCode::InvalidSessionTimeout, "x").to_string();
        assert!(other.contains("InvalidSessionTimeout"), "{other}");
    }

    #[test]
    fn a_user_property_wins() {
        let mut config = ClientConfig::new();
        config.set("group.instance.id", "mine");
        apply(&mut config, Membership::Static, Some("other"), "g");
        assert_eq!(config.get("group.instance.id"), Some("mine"));
        let mut config = ClientConfig::new();
        apply(&mut config, Membership::Dynamic, None, "g");
        assert_eq!(config.get("group.instance.id"), None);
    }
}
