//! The input constraints of the KVS API reference (lengths, patterns, ranges, enums), checked the
//! way AWS services check them: every violation of a request is collected and reported in one
//! `InvalidArgumentException` whose message follows AWS's "N validation errors detected: ..." form.

use std::sync::LazyLock;

use regex::Regex;

use crate::{ApiError, ErrorKind};

/// A string member's constraints.
pub struct StrRule {
    pub min: usize,
    pub max: usize,
    /// The compiled (anchored) pattern and the pattern as the API reference writes it.
    pub pattern: Option<(&'static LazyLock<Regex>, &'static str)>,
}

macro_rules! anchored {
    ($name:ident, $re:expr) => {
        static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(concat!("^(?:", $re, ")$")).expect("static pattern"));
    };
}

anchored!(NAME_RE, r"[a-zA-Z0-9_.-]+");
anchored!(VERSION_RE, r"[a-zA-Z0-9]+");
anchored!(NEXT_TOKEN_RE, r"[a-zA-Z0-9+/=]*");
anchored!(
    MEDIA_TYPE_RE,
    r"[\w\-\.\+]+/[\w\-\.\+]+(,[\w\-\.\+]+/[\w\-\.\+]+)*"
);
anchored!(ANY_RE, r"(?s).+");
anchored!(TAG_RE, r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*");
anchored!(
    RESOURCE_ARN_RE,
    r"arn:[a-z\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+"
);
anchored!(
    HUB_DEVICE_ARN_RE,
    r"arn:[a-z\d-]+:iot:[a-z0-9-]+:[0-9]+:thing/[a-zA-Z0-9_.-]+"
);
anchored!(
    SECRET_ARN_RE,
    r"arn:[a-z\d-]+:secretsmanager:[a-z0-9-]+:[0-9]+:secret:[a-zA-Z0-9_.-]+"
);
anchored!(SCHEDULE_RE, r"[^\n]{11,100}");
anchored!(DESTINATION_URI_RE, r"[a-zA-Z_0-9]+:(//)?([^/]+)/?([^*]*)");
anchored!(REGION_RE, r"[a-z]+(-[a-z]+)?-[a-z]+-[0-9]");
anchored!(FORMAT_CONFIG_VALUE_RE, r"[a-zA-Z_0-9]+");

anchored!(IAM_NAME_RE, r"[\w+=,.@-]+");
anchored!(THING_NAME_RE, r"[a-zA-Z0-9:_-]+");
anchored!(ROLE_ALIAS_RE, r"[\w=,@-]+");
anchored!(CERTIFICATE_ID_RE, r"(0x)?[a-fA-F0-9]+");
anchored!(THING_ATTRIBUTE_RE, r"[a-zA-Z0-9_.,@/:#=\[\]-]*");
anchored!(THING_TYPE_DESCRIPTION_RE, r"[[:graph:] ]*");

/// User, role and session names (IAM).
pub static IAM_NAME: StrRule = StrRule {
    min: 1,
    max: 64,
    pattern: Some((&IAM_NAME_RE, "[\\w+=,.@-]+")),
};
/// STS `RoleSessionName`.
pub static ROLE_SESSION_NAME: StrRule = StrRule {
    min: 2,
    max: 64,
    pattern: Some((&IAM_NAME_RE, "[\\w+=,.@-]*")),
};
pub static POLICY_NAME: StrRule = StrRule {
    min: 1,
    max: 128,
    pattern: Some((&IAM_NAME_RE, "[\\w+=,.@-]+")),
};
pub static THING_NAME: StrRule = StrRule {
    min: 1,
    max: 128,
    pattern: Some((&THING_NAME_RE, "[a-zA-Z0-9:_-]+")),
};
pub static ROLE_ALIAS: StrRule = StrRule {
    min: 1,
    max: 128,
    pattern: Some((&ROLE_ALIAS_RE, "[\\w=,@-]+")),
};
/// IoT thing attribute names and values.
pub static THING_ATTRIBUTE_NAME: StrRule = StrRule {
    min: 1,
    max: 128,
    pattern: Some((&THING_ATTRIBUTE_RE, "[a-zA-Z0-9_.,@/:#=\\[\\]-]+")),
};
pub static THING_ATTRIBUTE_VALUE: StrRule = StrRule {
    min: 0,
    max: 800,
    pattern: Some((&THING_ATTRIBUTE_RE, "[a-zA-Z0-9_.,@/:#=\\[\\]-]*")),
};
pub static THING_TYPE_DESCRIPTION: StrRule = StrRule {
    min: 0,
    max: 2028,
    pattern: Some((&THING_TYPE_DESCRIPTION_RE, "[\\p{Graph}\\x20]*")),
};
pub static CERTIFICATE_ID: StrRule = StrRule {
    min: 64,
    max: 64,
    pattern: Some((&CERTIFICATE_ID_RE, "(0x)?[a-fA-F0-9]+")),
};

pub static STREAM_NAME: StrRule = StrRule {
    min: 1,
    max: 256,
    pattern: Some((&NAME_RE, "[a-zA-Z0-9_.-]+")),
};
pub static CHANNEL_NAME: StrRule = StrRule {
    min: 1,
    max: 256,
    pattern: Some((&NAME_RE, "[a-zA-Z0-9_.-]+")),
};
/// A signaling client id or a TURN username hint (GetIceServerConfig).
pub static CLIENT_ID: StrRule = StrRule {
    min: 1,
    max: 256,
    pattern: Some((&NAME_RE, "[a-zA-Z0-9_.-]+")),
};

pub static DEVICE_NAME: StrRule = StrRule {
    min: 1,
    max: 128,
    pattern: Some((&NAME_RE, "[a-zA-Z0-9_.-]+")),
};
pub static RESOURCE_ARN: StrRule = StrRule {
    min: 1,
    max: 1024,
    pattern: Some((
        &RESOURCE_ARN_RE,
        "arn:[a-z\\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+",
    )),
};
pub static VERSION: StrRule = StrRule {
    min: 1,
    max: 64,
    pattern: Some((&VERSION_RE, "[a-zA-Z0-9]+")),
};
pub static NEXT_TOKEN: StrRule = StrRule {
    min: 0,
    max: 1024,
    pattern: Some((&NEXT_TOKEN_RE, "[a-zA-Z0-9+/=]*")),
};
pub static MEDIA_TYPE: StrRule = StrRule {
    min: 1,
    max: 128,
    pattern: Some((
        &MEDIA_TYPE_RE,
        "[\\w\\-\\.\\+]+/[\\w\\-\\.\\+]+(,[\\w\\-\\.\\+]+/[\\w\\-\\.\\+]+)*",
    )),
};
pub static KMS_KEY_ID: StrRule = StrRule {
    min: 1,
    max: 2048,
    pattern: Some((&ANY_RE, ".+")),
};
pub static TAG_KEY: StrRule = StrRule {
    min: 1,
    max: 128,
    pattern: Some((&TAG_RE, "^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$")),
};
pub static TAG_VALUE: StrRule = StrRule {
    min: 0,
    max: 256,
    pattern: Some((&TAG_RE, "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*")),
};
pub static HUB_DEVICE_ARN: StrRule = StrRule {
    min: 1,
    max: 1024,
    pattern: Some((
        &HUB_DEVICE_ARN_RE,
        "arn:[a-z\\d-]+:iot:[a-z0-9-]+:[0-9]+:thing/[a-zA-Z0-9_.-]+",
    )),
};
pub static MEDIA_URI_SECRET_ARN: StrRule = StrRule {
    min: 20,
    max: 2048,
    pattern: Some((
        &SECRET_ARN_RE,
        "arn:[a-z\\d-]+:secretsmanager:[a-z0-9-]+:[0-9]+:secret:[a-zA-Z0-9_.-]+",
    )),
};
pub static SCHEDULE_EXPRESSION: StrRule = StrRule {
    min: 11,
    max: 100,
    pattern: Some((&SCHEDULE_RE, "[^\\n]{11,100}")),
};
pub static DESTINATION_URI: StrRule = StrRule {
    min: 1,
    max: 255,
    pattern: Some((&DESTINATION_URI_RE, "^[a-zA-Z_0-9]+:(//)?([^/]+)/?([^*]*)$")),
};
pub static DESTINATION_REGION: StrRule = StrRule {
    min: 9,
    max: 14,
    pattern: Some((&REGION_RE, "^[a-z]+(-[a-z]+)?-[a-z]+-[0-9]$")),
};
pub static FORMAT_CONFIG_VALUE: StrRule = StrRule {
    min: 0,
    max: 256,
    pattern: Some((&FORMAT_CONFIG_VALUE_RE, "^[a-zA-Z_0-9]+")),
};

/// True for a valid stream or channel name.
pub fn is_resource_name(s: &str) -> bool {
    let n = s.chars().count();
    (1..=256).contains(&n) && NAME_RE.is_match(s)
}

/// Collects the violations of one request, in the order the members are checked.
#[derive(Default)]
pub struct Checks {
    errors: Vec<String>,
}

fn quote(v: &str) -> String {
    format!("'{v}'")
}

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    fn fail(&mut self, value: &str, field: &str, constraint: &str) {
        self.errors.push(format!(
            "Value {value} at '{field}' failed to satisfy constraint: Member must {constraint}"
        ));
    }

    /// A member the operation requires.
    pub fn required<T: ?Sized>(&mut self, field: &str, value: Option<&T>) -> &mut Self {
        if value.is_none() {
            self.fail("null", field, "not be null");
        }
        self
    }

    /// A string member, if present.
    pub fn string(&mut self, field: &str, value: Option<&str>, rule: &StrRule) -> &mut Self {
        let Some(v) = value else { return self };
        let len = v.chars().count();
        if len < rule.min {
            self.fail(
                &quote(v),
                field,
                &format!("have length greater than or equal to {}", rule.min),
            );
        } else if len > rule.max {
            self.fail(
                &quote(v),
                field,
                &format!("have length less than or equal to {}", rule.max),
            );
        } else if let Some((re, shown)) = rule.pattern {
            if !re.is_match(v) {
                self.fail(
                    &quote(v),
                    field,
                    &format!("satisfy regular expression pattern: {shown}"),
                );
            }
        }
        self
    }

    /// An integer member, if present, within `min..=max`.
    pub fn range(&mut self, field: &str, value: Option<i64>, min: i64, max: i64) -> &mut Self {
        let Some(v) = value else { return self };
        if v < min {
            self.fail(
                &v.to_string(),
                field,
                &format!("have value greater than or equal to {min}"),
            );
        } else if v > max {
            self.fail(
                &v.to_string(),
                field,
                &format!("have value less than or equal to {max}"),
            );
        }
        self
    }

    /// A string member, if present, from a fixed set.
    pub fn one_of(&mut self, field: &str, value: Option<&str>, allowed: &[&str]) -> &mut Self {
        let Some(v) = value else { return self };
        if !allowed.contains(&v) {
            self.fail(
                &quote(v),
                field,
                &format!("satisfy enum value set: [{}]", allowed.join(", ")),
            );
        }
        self
    }

    /// A list member, if present, with `min..=max` items.
    pub fn count(&mut self, field: &str, len: Option<usize>, min: usize, max: usize) -> &mut Self {
        let Some(n) = len else { return self };
        if n < min {
            self.fail(
                &format!("(list of {n})"),
                field,
                &format!("have length greater than or equal to {min}"),
            );
        } else if n > max {
            self.fail(
                &format!("(list of {n})"),
                field,
                &format!("have length less than or equal to {max}"),
            );
        }
        self
    }

    /// A free-form violation that the generic checks cannot express.
    pub fn custom(&mut self, message: impl Into<String>) -> &mut Self {
        self.errors.push(message.into());
        self
    }

    /// `Ok` when nothing failed, else one `InvalidArgumentException` listing every violation.
    pub fn finish(&mut self) -> Result<(), ApiError> {
        match self.errors.len() {
            0 => Ok(()),
            n => {
                let plural = if n == 1 { "error" } else { "errors" };
                Err(ApiError::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "{n} validation {plural} detected: {}",
                        std::mem::take(&mut self.errors).join("; ")
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_violation() {
        let err = Checks::new()
            .required::<String>("streamName", None)
            .string("deviceName", Some("bad name"), &DEVICE_NAME)
            .range("maxResults", Some(0), 1, 10000)
            .finish()
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument);
        assert!(err.message.starts_with("3 validation errors detected:"));
        assert!(err.message.contains("Value null at 'streamName'"));
        assert!(err.message.contains("regular expression pattern"));
        assert!(err.message.contains("greater than or equal to 1"));
    }

    #[test]
    fn patterns_match_whole_values() {
        let mut c = Checks::new();
        c.string("n", Some("good.name-1_x"), &STREAM_NAME);
        assert!(c.finish().is_ok());
        for bad in ["a/b", "a b", "", "ü"] {
            assert!(
                Checks::new()
                    .string("n", Some(bad), &STREAM_NAME)
                    .finish()
                    .is_err(),
                "{bad}"
            );
        }
        assert!(Checks::new()
            .string("m", Some("video/h264,audio/aac"), &MEDIA_TYPE)
            .finish()
            .is_ok());
        assert!(Checks::new()
            .string("m", Some("video"), &MEDIA_TYPE)
            .finish()
            .is_err());
    }

    #[test]
    fn tag_classes_are_unicode() {
        assert!(Checks::new()
            .string("k", Some("Ünïcode key 1:/=+-@"), &TAG_KEY)
            .finish()
            .is_ok());
        assert!(Checks::new()
            .string("k", Some("semi;colon"), &TAG_KEY)
            .finish()
            .is_err());
        assert!(Checks::new()
            .string("v", Some(""), &TAG_VALUE)
            .finish()
            .is_ok());
    }

    #[test]
    fn lengths_count_characters() {
        let long = "a".repeat(257);
        let err = Checks::new()
            .string("n", Some(&long), &STREAM_NAME)
            .finish()
            .unwrap_err();
        assert!(err.message.contains("less than or equal to 256"));
    }
}
