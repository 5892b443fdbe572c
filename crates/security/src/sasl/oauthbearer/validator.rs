//! `OAuthBearerValidator`: Kafka's broker-side JWT checks (`BrokerJwtValidator` on jose4j) over
//! `jsonwebtoken`. The token's `alg` must be an asymmetric one we allow (RS256/384/512,
//! PS256/384/512, ES256/384: never `none`, never HMAC with a public key); the key is chosen by
//! `kid` (or, without one, every key of the right type is tried); the signature, `exp` (required),
//! `nbf`, `iat` (required, as Kafka) are checked with `sasl.oauthbearer.clock.skew.seconds` of
//! leeway; `aud` must hold one of `sasl.oauthbearer.expected.audience` when that is set, and a
//! token that names an audience is refused when none is expected (jose4j's and RFC 7519's rule);
//! `iss` must equal `sasl.oauthbearer.expected.issuer` when set. The principal is the
//! `sasl.oauthbearer.sub.claim.name` claim, the scopes the `sasl.oauthbearer.scope.claim.name` one.

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::sasl::oauthbearer::jwks::JwksCache;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedToken {
    /// The subject: the principal's name.
    pub principal_name: String,
    /// The scopes (Kafka takes a string claim as one scope, a list as several).
    pub scopes: Vec<String>,
    /// `exp`, in epoch milliseconds.
    pub expiry_ms: i64,
    /// `iat`, in epoch milliseconds.
    pub issued_at_ms: i64,
}

/// The claim rules of one listener.
#[derive(Debug, Clone)]
pub struct ValidatorSettings {
    /// `sasl.oauthbearer.expected.audience`.
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer`.
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name` (default `sub`).
    pub sub_claim_name: String,
    /// `sasl.oauthbearer.scope.claim.name` (default `scope`).
    pub scope_claim_name: String,
    /// `sasl.oauthbearer.clock.skew.seconds` (default 30).
    pub clock_skew_seconds: u64,
}

impl Default for ValidatorSettings {
    fn default() -> Self {
        ValidatorSettings {
            expected_audience: Vec::new(),
            expected_issuer: None,
            sub_claim_name: "sub".into(),
            scope_claim_name: "scope".into(),
            clock_skew_seconds: 30,
        }
    }
}

/// Validates access tokens against a JWKS.
#[derive(Debug)]
pub struct OAuthBearerValidator {
    jwks: Arc<JwksCache>,
    settings: ValidatorSettings,
}

const ALLOWED: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

fn fits(alg: Algorithm, jwk: &Jwk) -> bool {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => !matches!(alg, Algorithm::ES256 | Algorithm::ES384),
        AlgorithmParameters::EllipticCurve(_) => matches!(alg, Algorithm::ES256 | Algorithm::ES384),
        _ => false,
    };
    // A key that names its algorithm is only used for that one.
    let by_alg = jwk
        .common
        .key_algorithm
        .is_none_or(|ka| format!("{ka:?}") == format!("{alg:?}"));
    by_type && by_alg
}

impl OAuthBearerValidator {
    /// A validator over `jwks` with `settings`.
    pub fn new(jwks: Arc<JwksCache>, settings: ValidatorSettings) -> Self {
        OAuthBearerValidator { jwks, settings }
    }

    /// The key cache (to refresh it or start its refresher).
    pub fn jwks(&self) -> &Arc<JwksCache> {
        &self.jwks
    }

    /// Checks `token`; the error is a reason for the server's log.
    pub fn validate(&self, token: &str) -> Result<ValidatedToken, String> {
        let fail = |why: &str| format!("Could not validate the access token: {why}");
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| fail(&format!("malformed JWT ({e})")))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(fail(&format!("algorithm {:?} is not allowed", header.alg)));
        }
        let keys = self.jwks.keys();
        let candidates: Vec<&Jwk> = keys
            .iter()
            .filter(|k| match &header.kid {
                Some(kid) => k.common.key_id.as_deref() == Some(kid.as_str()),
                None => true,
            })
            .filter(|k| fits(header.alg, k))
            .collect();
        if candidates.is_empty() {
            if let Some(kid) = &header.kid {
                self.jwks.request_refresh();
                return Err(fail(&format!(
                    "no key with kid {kid:?} in the JWKS (a refresh was requested)"
                )));
            }
            return Err(fail(&format!(
                "no key in the JWKS for algorithm {:?}",
                header.alg
            )));
        }
        let validation = self.validation(header.alg);
        let mut first_error = None;
        for jwk in candidates {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
                Ok(data) => return self.claims(data.claims).map_err(|e| fail(&e)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(fail(
            &first_error.map_or("no usable key".to_string(), |e| e.to_string()),
        ))
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let s = &self.settings;
        let mut v = Validation::new(alg);
        v.leeway = s.clock_skew_seconds;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if !s.expected_audience.is_empty() {
            v.set_audience(&s.expected_audience);
            required.push("aud");
        }
        if let Some(iss) = &s.expected_issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        v
    }

    fn claims(&self, claims: Map<String, Value>) -> Result<ValidatedToken, String> {
        let s = &self.settings;
        let millis = |name: &str| -> Result<i64, String> {
            let v = claims
                .get(name)
                .ok_or_else(|| format!("the {name} claim is missing"))?;
            v.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|secs| (secs * 1000.0) as i64)
                .ok_or_else(|| format!("the {name} claim is not a number of seconds"))
        };
        let expiry_ms = millis("exp")?;
        let issued_at_ms = millis("iat")?;
        let principal_name = match claims.get(&s.sub_claim_name) {
            Some(Value::String(sub)) if !sub.trim().is_empty() => sub.trim().to_string(),
            Some(_) => {
                return Err(format!(
                    "the {} claim must be a non-empty string",
                    s.sub_claim_name
                ))
            }
            None => return Err(format!("the {} claim is missing", s.sub_claim_name)),
        };
        let scopes = match claims.get(&s.scope_claim_name) {
            Some(Value::String(scope)) => vec![scope.trim().to_string()],
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(|x| x.trim().to_string())
                .collect(),
            _ => Vec::new(),
        };
        let unique: HashSet<&String> = scopes.iter().collect();
        if unique.len() != scopes.len() || scopes.iter().any(String::is_empty) {
            return Err(format!(
                "the {} claim holds an empty or repeated scope",
                s.scope_claim_name
            ));
        }
        Ok(ValidatedToken {
            principal_name,
            scopes,
            expiry_ms,
            issued_at_ms,
        })
    }
}
