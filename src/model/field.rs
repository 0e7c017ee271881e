//! The string-valued fields of an AWS IoT log entry (and of a CloudTrail
//! record of an IoT API call), by name: one line each, aliases included.
//! The full reader, the item writer and classification's table all start
//! from this one.

macro_rules! text_fields {
    ($($variant:ident => $name:literal $(| $alias:literal)*),+ $(,)?) => {
        /// The string-valued attributes the model knows by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Field { $($variant),+ }

        impl Field {
            pub const ALL: &'static [Field] = &[$(Field::$variant),+];
            /// Every name read as a field, aliases included.
            pub const NAMES: &'static [(&'static str, Field)] =
                &[$(($name, Field::$variant), $(($alias, Field::$variant),)*)+];
            pub(crate) const COUNT: usize = Self::ALL.len();

            /// The attribute's name in the log entry (and in stored items).
            pub fn name(self) -> &'static str {
                match self { $(Field::$variant => $name),+ }
            }

            pub(crate) fn from_name(name: &str) -> Option<Field> {
                match name { $($name $(| $alias)* => Some(Field::$variant),)+ _ => None }
            }
        }
    };
}

text_fields! {
    Timestamp => "timestamp",
    LogLevel => "logLevel",
    TraceId => "traceId",
    AccountId => "accountId",
    Status => "status",
    Protocol => "protocol",
    ClientId => "clientId",
    PrincipalId => "principalId",
    SourceIp => "sourceIp",
    TopicName => "topicName",
    RuleName => "ruleName",
    RuleAction => "ruleAction",
    Reason => "reason",
    Details => "details",
    DeviceShadowName => "deviceShadowName",
    JobId => "jobId",
    ClientToken => "clientToken",
    VersionNumber => "versionNumber",
    DeviceCertificateId => "deviceCertificateId",
    ProvisioningTemplateName => "provisioningTemplateName",
    // CloudTrail records of AWS IoT API calls: camelCase as CloudTrail
    // delivers them to CloudWatch Logs, PascalCase as the IoT guide shows them.
    EventSource => "eventSource" | "EventSource",
    EventName => "eventName" | "EventName",
    EventTime => "eventTime" | "EventTime",
    ErrorCode => "errorCode" | "ErrorCode",
    ErrorMessage => "errorMessage" | "ErrorMessage",
    RequestId => "requestID" | "RequestID",
    EventId => "eventID" | "EventID",
    RecipientAccountId => "recipientAccountId" | "RecipientAccountId",
}
