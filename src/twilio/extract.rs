//! The extractor every webhook handler takes: content type, size limit, strict form
//! parsing and the `X-Twilio-Signature` check, in that order.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, OriginalUri, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};

use super::form::{FormError, WebhookForm};
use super::signature;

/// Twilio's webhook bodies are a few hundred bytes; anything near this is not Twilio.
pub const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// How webhooks are authenticated.
#[derive(Clone)]
pub struct WebhookAuth {
    auth_token: Option<SecretString>,
    public_base_url: String,
}

impl std::fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookAuth")
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "[redacted]"),
            )
            .field("public_base_url", &self.public_base_url)
            .finish()
    }
}

/// Why a webhook's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Twilio-Signature header")]
    Missing,
    #[error("X-Twilio-Signature does not match")]
    Mismatch,
}

impl WebhookAuth {
    /// `auth_token: None` is development mode: nothing is checked, and every request warns.
    pub fn new(auth_token: Option<SecretString>, public_base_url: &str) -> Self {
        Self {
            auth_token,
            public_base_url: public_base_url.trim_end_matches('/').to_string(),
        }
    }

    pub fn public_base_url(&self) -> &str {
        &self.public_base_url
    }

    pub fn is_insecure(&self) -> bool {
        self.auth_token.is_none()
    }

    /// The URL Twilio signed: the configured public base plus the path and query as
    /// received. Never built from `Host` or `X-Forwarded-*`, which a caller controls.
    pub fn signed_url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.public_base_url, path_and_query)
    }

    pub fn verify(
        &self,
        path_and_query: &str,
        form: &WebhookForm,
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        let Some(token) = &self.auth_token else {
            tracing::warn!(
                path = path_and_query.split('?').next().unwrap_or(""),
                "INSECURE: webhook signature NOT checked (serve --insecure-dev)"
            );
            return Ok(());
        };
        let signature = signature.ok_or(SignatureError::Missing)?;
        let url = self.signed_url(path_and_query);
        if signature::is_valid(
            token.expose_secret().as_bytes(),
            &url,
            form.params(),
            signature,
        ) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// A webhook refused before it reached a handler.
#[derive(Debug)]
pub enum WebhookRejection {
    UnsupportedMediaType,
    TooLarge,
    Malformed(FormError),
    Forbidden,
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        match self {
            WebhookRejection::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "webhooks must be application/x-www-form-urlencoded\n",
            )
                .into_response(),
            WebhookRejection::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "webhook bodies are limited to {} KiB\n",
                    MAX_WEBHOOK_BODY / 1024
                ),
            )
                .into_response(),
            WebhookRejection::Malformed(e) => {
                (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
            }
            // No TwiML and no reason: nothing for a prober to learn.
            WebhookRejection::Forbidden => StatusCode::FORBIDDEN.into_response(),
        }
    }
}

/// A webhook form whose signature has been checked.
#[derive(Debug)]
pub struct VerifiedForm(pub WebhookForm);

impl<S> FromRequest<S> for VerifiedForm
where
    WebhookAuth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let auth = WebhookAuth::from_ref(state);
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return Err(WebhookRejection::UnsupportedMediaType);
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_WEBHOOK_BODY) {
            return Err(WebhookRejection::TooLarge);
        }
        let uri = req
            .extensions()
            .get::<OriginalUri>()
            .map(|o| o.0.clone())
            .unwrap_or_else(|| req.uri().clone());
        let path_and_query = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let signature = req
            .headers()
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // A body without a length that grows past the limit is cut off here.
        let body: Bytes = axum::body::to_bytes(req.into_body(), MAX_WEBHOOK_BODY)
            .await
            .map_err(|_| WebhookRejection::TooLarge)?;
        let form = WebhookForm::parse(&body).map_err(WebhookRejection::Malformed)?;
        if let Err(e) = auth.verify(&path_and_query, &form, signature.as_deref()) {
            // A security event: the path only (never the query, numbers or other form values).
            tracing::warn!(
                target: "security",
                path = uri.path(),
                reason = %e,
                "webhook refused: signature check failed"
            );
            return Err(WebhookRejection::Forbidden);
        }
        Ok(VerifiedForm(form))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    const BASE: &str = "https://helpline.example.nhs.uk";

    #[derive(Clone)]
    struct St(WebhookAuth);
    impl FromRef<St> for WebhookAuth {
        fn from_ref(s: &St) -> Self {
            s.0.clone()
        }
    }

    fn app(token: Option<&str>) -> Router {
        let auth = WebhookAuth::new(token.map(|t| SecretString::from(t.to_string())), BASE);
        Router::new()
            .route(
                "/hook",
                post(|VerifiedForm(f): VerifiedForm| async move {
                    f.get("From").unwrap_or("").to_string()
                }),
            )
            .with_state(St(auth))
    }

    fn params() -> Vec<(String, String)> {
        vec![
            ("CallSid".into(), "CA1".into()),
            ("From".into(), "+447700900123".into()),
        ]
    }

    fn body(p: &[(String, String)]) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in p {
            s.append_pair(k, v);
        }
        s.finish()
    }

    async fn send(
        app: Router,
        content_type: &str,
        body: String,
        sig: Option<String>,
    ) -> (StatusCode, String) {
        let mut req = Request::builder()
            .method("POST")
            .uri("/hook?x=1")
            .header("content-type", content_type);
        if let Some(s) = sig {
            req = req.header("x-twilio-signature", s);
        }
        let resp = app
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    const FORM: &str = "application/x-www-form-urlencoded";

    #[tokio::test]
    async fn signed_request_passes() {
        let sig = signature::compute(b"tok", &format!("{BASE}/hook?x=1"), &params());
        let (status, text) = send(
            app(Some("tok")),
            "application/x-www-form-urlencoded; charset=utf-8",
            body(&params()),
            Some(sig),
        )
        .await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "+447700900123"));
    }

    #[tokio::test]
    async fn missing_or_forged_signature_is_403_with_no_body() {
        let (status, text) = send(app(Some("tok")), FORM, body(&params()), None).await;
        assert_eq!((status, text.as_str()), (StatusCode::FORBIDDEN, ""));
        let forged = signature::compute(b"other", &format!("{BASE}/hook?x=1"), &params());
        let (status, text) = send(app(Some("tok")), FORM, body(&params()), Some(forged)).await;
        assert_eq!((status, text.as_str()), (StatusCode::FORBIDDEN, ""));
        // Signed without the query string: not the URL Twilio called.
        let wrong_url = signature::compute(b"tok", &format!("{BASE}/hook"), &params());
        let (status, _) = send(app(Some("tok")), FORM, body(&params()), Some(wrong_url)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn oversized_malformed_and_wrong_type() {
        let big = format!("CallSid=CA1&Pad={}", "x".repeat(MAX_WEBHOOK_BODY));
        let (status, _) = send(app(Some("tok")), FORM, big, Some("x".into())).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let (status, text) = send(
            app(Some("tok")),
            FORM,
            "CallSid=CA1&From=%FF".into(),
            Some("x".into()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.contains("not valid UTF-8"), "{text}");
        let (status, _) = send(app(Some("tok")), "application/json", "{}".into(), None).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[tokio::test]
    async fn insecure_mode_accepts_unsigned() {
        let (status, text) = send(app(None), FORM, body(&params()), None).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "+447700900123"));
    }

    #[test]
    fn debug_hides_the_token() {
        let auth = WebhookAuth::new(Some(SecretString::from("hunter2".to_string())), BASE);
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
