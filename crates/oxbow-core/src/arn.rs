//! Resource ARNs: `arn:<partition>:kinesisvideo:<region>:<account>:<type>/<name>/<creation-ms>`.
//! The trailing number is the creation time in epoch milliseconds, which is how KVS tells a
//! stream apart from an older, deleted stream of the same name.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    Stream,
    Channel,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Stream => "stream",
            ResourceType::Channel => "channel",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub resource_type: ResourceType,
    pub name: String,
    pub creation_ms: i64,
}

impl fmt::Display for ResourceArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:kinesisvideo:{}:{}:{}/{}/{}",
            self.partition,
            self.region,
            self.account,
            self.resource_type.as_str(),
            self.name,
            self.creation_ms
        )
    }
}

/// Why a string is not a KVS resource ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Kinesis Video resource ARN: {0}")]
pub struct ArnError(pub String);

impl FromStr for ResourceArn {
    type Err = ArnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ArnError(s.to_string());
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return Err(bad());
        };
        let lower_digit_dash = |v: &str| {
            !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        if arn != "arn"
            || service != "kinesisvideo"
            || !lower_digit_dash(partition)
            || !lower_digit_dash(region)
            || account.is_empty()
            || !account.chars().all(|c| c.is_ascii_digit())
        {
            return Err(bad());
        }
        let mut segments = resource.split('/');
        let (Some(kind), Some(name), Some(code), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(bad());
        };
        let resource_type = match kind {
            "stream" => ResourceType::Stream,
            "channel" => ResourceType::Channel,
            _ => return Err(bad()),
        };
        if !crate::validate::is_resource_name(name)
            || code.is_empty()
            || !code.chars().all(|c| c.is_ascii_digit())
        {
            return Err(bad());
        }
        let creation_ms = code.parse().map_err(|_| bad())?;
        Ok(ResourceArn {
            partition: partition.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            resource_type,
            name: name.to_string(),
            creation_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/YourChannelName/1574203743620";
        let arn: ResourceArn = s.parse().unwrap();
        assert_eq!(arn.resource_type, ResourceType::Channel);
        assert_eq!(arn.name, "YourChannelName");
        assert_eq!(arn.creation_ms, 1574203743620);
        assert_eq!(arn.to_string(), s);
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "arn:aws:kinesis:us-west-2:1:stream/a/1",
            "arn:aws:kinesisvideo:us-west-2:12a:stream/a/1",
            "arn:aws:kinesisvideo:us-west-2:1:table/a/1",
            "arn:aws:kinesisvideo:us-west-2:1:stream/a",
            "arn:aws:kinesisvideo:us-west-2:1:stream/a/1/2",
            "arn:aws:kinesisvideo:us-west-2:1:stream/a b/1",
            "arn:aws:kinesisvideo:us-west-2:1:stream/a/x",
        ] {
            assert!(s.parse::<ResourceArn>().is_err(), "{s}");
        }
    }
}
