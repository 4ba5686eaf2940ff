//! `oxbow bench policy`: the cost of judging one request against many attached policies, next
//! to the cost of verifying one SigV4 signature (the work every request already pays), both
//! measured in this process in the same run.

use std::hint::black_box;
use std::time::Instant;

use clap::Args;
use http::{HeaderMap, HeaderValue};
use oxbow_auth::policy::{evaluate, Decision, Policy, Request, Vars};
use time::OffsetDateTime;

use super::median;

#[derive(Args)]
pub struct PolicyArgs {
    /// Policies attached to the principal.
    #[arg(long, default_value_t = 100)]
    policies: usize,
    /// Statements per policy.
    #[arg(long, default_value_t = 10)]
    statements: usize,
    /// Evaluations per run.
    #[arg(long, default_value_t = 100_000)]
    iterations: usize,
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// Policies whose statements all miss except the very last one, so every statement is tried.
fn policies(n: usize, per: usize) -> Vec<Policy> {
    (0..n)
        .map(|p| {
            let statements: Vec<String> = (0..per)
                .map(|s| {
                    let last = p == n - 1 && s == per - 1;
                    let stream = if last { "${credentials-iot:ThingName}".to_string() } else { format!("other-{p}-{s}") };
                    format!(
                        r#"{{"Effect":"Allow","Action":["kinesisvideo:Describe*","kinesisvideo:PutMedia"],
                            "Resource":"arn:aws:kinesisvideo:*:*:stream/{stream}/*",
                            "Condition":{{"IpAddress":{{"aws:SourceIp":"10.0.0.0/8"}}}}}}"#
                    )
                })
                .collect();
            Policy::parse(&format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(",")))
                .expect("generated policy")
        })
        .collect()
}

fn time_per_op(iterations: usize, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..iterations {
        f();
    }
    started.elapsed().as_nanos() as f64 / iterations as f64
}

pub async fn policy(args: PolicyArgs) -> Result<(), Box<dyn std::error::Error>> {
    let set = policies(args.policies.max(1), args.statements.max(1));
    let context: Vars = [
        (
            "credentials-iot:ThingName".to_string(),
            vec!["cam-7".to_string()],
        ),
        ("aws:SourceIp".to_string(), vec!["10.1.2.3".to_string()]),
    ]
    .into_iter()
    .collect();
    let req = Request {
        action: "kinesisvideo:PutMedia",
        resource: "arn:aws:kinesisvideo:us-east-1:123456789012:stream/cam-7/1700000000000",
        context: &context,
    };
    assert_eq!(evaluate(&set, &req), Decision::Allow);

    // Baseline: verify a signed DescribeStream, as the front door does for every request.
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:7800"));
    let body_hash = oxbow_auth::EMPTY_SHA256;
    let now = OffsetDateTime::now_utc();
    let params = oxbow_auth::SigningParams {
        access_key_id: "AKIAEXAMPLE000000000",
        secret_access_key: "secret",
        security_token: None,
        region: "us-east-1",
        service: "kinesisvideo",
        time: now,
    };
    for (k, v) in oxbow_auth::sign(
        "POST",
        "/describeStream",
        None,
        &headers,
        body_hash,
        &params,
    ) {
        headers.insert(k, HeaderValue::from_str(&v)?);
    }
    let signed = oxbow_auth::Request {
        method: "POST",
        path: "/describeStream",
        query: None,
        headers: &headers,
        payload_hashes: &[body_hash],
    };

    let (mut eval_ns, mut sig_ns) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        eval_ns.push(time_per_op(args.iterations, || {
            black_box(evaluate(&set, black_box(&req)));
        }));
        sig_ns.push(time_per_op(args.iterations / 10 + 1, || {
            let parsed = oxbow_auth::parse(&signed).expect("signed");
            black_box(
                oxbow_auth::verify(&parsed, &signed, "secret", "us-east-1", "kinesisvideo", now)
                    .is_ok(),
            );
        }));
    }
    let (e, s) = (median(&mut eval_ns), median(&mut sig_ns));
    println!(
        "{} policies x {} statements: {:.0} ns per evaluation (median of {} runs); SigV4 verification: {:.0} ns; evaluation/verification = {:.2}",
        args.policies, args.statements, e, args.runs, s, e / s
    );
    Ok(())
}
