//! The extractor every webhook handler takes: content type, size limit, strict form
//! parsing and the `X-Twilio-Signature` check, in that order.

use axum::extract::{FromRef, FromRequest, OriginalUri, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};

use crate::twilio::form::{FormError, WebhookForm};
use crate::twilio::signature;

/// Twilio's webhook bodies are a few kilobytes at most; anything larger is not Twilio.
pub const MAX_WEBHOOK_BODY: usize = 64 * 1024;

/// The header Twilio signs its requests in.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// How webhooks are authenticated: the account's auth token and the public URL Twilio
/// is configured to call.
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
    /// `auth_token: None` is insecure development mode: signatures are not checked and
    /// every request logs a warning. A trailing `/` on the base URL is dropped.
    pub fn new(auth_token: Option<SecretString>, public_base_url: &str) -> Self {
        Self {
            auth_token,
            public_base_url: public_base_url.trim_end_matches('/').to_string(),
        }
    }

    /// The configured public base URL, without a trailing slash.
    pub fn public_base_url(&self) -> &str {
        &self.public_base_url
    }

    /// True in development mode, when no signature is checked.
    pub fn is_insecure(&self) -> bool {
        self.auth_token.is_none()
    }

    /// The URL Twilio signed: the configured public base plus the path and query exactly
    /// as received. Never built from `Host` or `X-Forwarded-*`, which a caller controls.
    pub fn signed_url(&self, path_and_query: &str) -> String {
        let mut url = String::with_capacity(self.public_base_url.len() + path_and_query.len());
        url.push_str(&self.public_base_url);
        url.push_str(path_and_query);
        url
    }

    /// Checks `signature` (the `X-Twilio-Signature` header, if any) for a request to
    /// `path_and_query` carrying `form`. Always `Ok` in insecure mode, with a warning.
    pub fn verify(
        &self,
        path_and_query: &str,
        form: &WebhookForm,
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        let Some(token) = &self.auth_token else {
            tracing::warn!(
                path = path_only(path_and_query),
                "INSECURE: webhook signature NOT checked (no Twilio auth token; development mode)"
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

/// The path of a path-and-query: what may be logged.
fn path_only(path_and_query: &str) -> &str {
    path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path)
}

/// A webhook refused before it reached a handler.
#[derive(Debug)]
pub enum WebhookRejection {
    /// 415: not `application/x-www-form-urlencoded`.
    UnsupportedMediaType,
    /// 413: longer than [`MAX_WEBHOOK_BODY`].
    TooLarge,
    /// 400: the body is not a well-formed form; the reason is sent as plain text.
    Malformed(FormError),
    /// 403: the signature is missing or wrong; the body is empty.
    Forbidden(SignatureError),
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
            WebhookRejection::Forbidden(_) => StatusCode::FORBIDDEN.into_response(),
        }
    }
}

/// `application/x-www-form-urlencoded`, with or without parameters such as `charset`.
fn is_form_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// A webhook form whose signature has been checked (or, in insecure mode, not).
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
        if !is_form_content_type(req.headers()) {
            return Err(WebhookRejection::UnsupportedMediaType);
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_WEBHOOK_BODY as u64) {
            return Err(WebhookRejection::TooLarge);
        }
        // The URI as the server received it, even inside a nested router.
        let uri = req
            .extensions()
            .get::<OriginalUri>()
            .map_or_else(|| req.uri().clone(), |o| o.0.clone());
        let path_and_query = uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        let signature = req
            .headers()
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // A body without a length, or longer than it said, is cut off at the limit. The
        // only other read failures are a vanished client (who gets no answer anyway) and
        // an outer body-limit layer's own length error, so all of them are 413.
        let body = axum::body::to_bytes(req.into_body(), MAX_WEBHOOK_BODY)
            .await
            .map_err(|_| WebhookRejection::TooLarge)?;
        let form = WebhookForm::parse(&body).map_err(WebhookRejection::Malformed)?;
        if let Err(e) = auth.verify(&path_and_query, &form, signature.as_deref()) {
            // A security event naming the path only: never the query, numbers or form values.
            tracing::warn!(
                security = true,
                path = uri.path(),
                reason = %e,
                "webhook refused: Twilio signature check failed"
            );
            return Err(WebhookRejection::Forbidden(e));
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
    use std::sync::{Arc, Mutex};
    use tower::ServiceExt;

    const BASE: &str = "https://helpline.example.nhs.uk";
    const TOKEN: &str = "test-token";
    const FORM: &str = "application/x-www-form-urlencoded";
    const PHONE: &str = "+447700900123";

    #[derive(Clone)]
    struct St(WebhookAuth);

    impl FromRef<St> for WebhookAuth {
        fn from_ref(s: &St) -> Self {
            s.0.clone()
        }
    }

    fn auth(token: Option<&str>) -> WebhookAuth {
        WebhookAuth::new(token.map(|t| SecretString::from(t.to_string())), BASE)
    }

    /// A handler that echoes the `From` field.
    fn app(token: Option<&str>) -> Router {
        Router::new()
            .route(
                "/hook",
                post(|VerifiedForm(f): VerifiedForm| async move {
                    f.get("From").unwrap_or("").to_string()
                }),
            )
            .with_state(St(auth(token)))
    }

    fn params() -> Vec<(String, String)> {
        vec![
            ("CallSid".into(), "CA1234567890ABCDE".into()),
            ("From".into(), PHONE.into()),
            ("SpeechResult".into(), "my mum's ward & number".into()),
        ]
    }

    fn encode(p: &[(String, String)]) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in p {
            s.append_pair(k, v);
        }
        s.finish()
    }

    fn sign(token: &str, url: &str, p: &[(String, String)]) -> String {
        signature::compute(token.as_bytes(), url, p)
    }

    struct Sent {
        uri: &'static str,
        content_type: Option<&'static str>,
        body: String,
        signature: Option<String>,
        extra: Vec<(&'static str, String)>,
    }

    fn request(body: String, signature: Option<String>) -> Sent {
        Sent {
            uri: "/hook?seq=1",
            content_type: Some(FORM),
            body,
            signature,
            extra: vec![],
        }
    }

    fn signed() -> Sent {
        let sig = sign(TOKEN, &format!("{BASE}/hook?seq=1"), &params());
        request(encode(&params()), Some(sig))
    }

    async fn send(app: Router, s: Sent) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::builder().method("POST").uri(s.uri);
        if let Some(ct) = s.content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        if let Some(sig) = s.signature {
            req = req.header(SIGNATURE_HEADER, sig);
        }
        for (k, v) in s.extra {
            req = req.header(k, v);
        }
        let resp = app
            .oneshot(req.body(Body::from(s.body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    // --- A tiny tracing subscriber that records every event's fields as text. ---

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    struct Fields<'a>(&'a mut String);

    impl tracing::field::Visit for Fields<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!("{}={:?} ", field.name(), value));
        }
    }

    impl tracing::Subscriber for Recorder {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut line = format!("{} ", event.metadata().level());
            event.record(&mut Fields(&mut line));
            self.0.lock().unwrap().push(line);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    impl Recorder {
        fn lines(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    // --- The tests. ---

    #[tokio::test]
    async fn correctly_signed_request_passes() {
        let (status, _, text) = send(app(Some(TOKEN)), signed()).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, PHONE));
    }

    #[tokio::test]
    async fn charset_parameter_and_case_are_accepted() {
        for ct in [
            "application/x-www-form-urlencoded; charset=utf-8",
            "Application/X-WWW-Form-URLEncoded;charset=UTF-8",
        ] {
            let mut s = signed();
            s.content_type = Some(ct);
            let (status, _, _) = send(app(Some(TOKEN)), s).await;
            assert_eq!(status, StatusCode::OK, "{ct}");
        }
    }

    #[tokio::test]
    async fn signature_over_the_default_port_form_is_accepted() {
        let sig = sign(
            TOKEN,
            "https://helpline.example.nhs.uk:443/hook?seq=1",
            &params(),
        );
        let (status, _, _) = send(app(Some(TOKEN)), request(encode(&params()), Some(sig))).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn nested_router_signs_the_original_uri() {
        let inner: Router<St> =
            Router::new().route(
                "/voice",
                post(|VerifiedForm(f): VerifiedForm| async move {
                    f.get("From").unwrap_or("").to_string()
                }),
            );
        let app = Router::new()
            .nest("/twilio", inner)
            .with_state(St(auth(Some(TOKEN))));
        let sig = sign(TOKEN, &format!("{BASE}/twilio/voice?a=1&b=2"), &params());
        let mut s = request(encode(&params()), Some(sig));
        s.uri = "/twilio/voice?a=1&b=2";
        let (status, _, text) = send(app.clone(), s).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, PHONE));
        // The path the inner router sees is not what Twilio signed.
        let sig = sign(TOKEN, &format!("{BASE}/voice?a=1&b=2"), &params());
        let mut s = request(encode(&params()), Some(sig));
        s.uri = "/twilio/voice?a=1&b=2";
        let (status, _, _) = send(app, s).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn missing_signature_is_403_with_an_empty_body() {
        let mut s = signed();
        s.signature = None;
        let (status, headers, text) = send(app(Some(TOKEN)), s).await;
        assert_eq!((status, text.as_str()), (StatusCode::FORBIDDEN, ""));
        assert!(headers.get(header::CONTENT_TYPE).is_none(), "no TwiML");
    }

    #[tokio::test]
    async fn forged_signatures_are_403_with_an_empty_body() {
        let url = format!("{BASE}/hook?seq=1");
        let mut tampered = params();
        tampered[1].1 = "+447700900999".into();
        let mut added = params();
        added.push(("Digits".into(), "1".into()));
        let cases = [
            (
                "wrong token",
                sign("other-token", &url, &params()),
                params(),
            ),
            ("tampered value", sign(TOKEN, &url, &params()), tampered),
            ("added field", sign(TOKEN, &url, &params()), added),
            (
                "no query",
                sign(TOKEN, &format!("{BASE}/hook"), &params()),
                params(),
            ),
            (
                "other host",
                sign(TOKEN, "https://evil.example/hook?seq=1", &params()),
                params(),
            ),
            ("garbage", "%%% not base64 %%%".to_string(), params()),
            ("empty", String::new(), params()),
        ];
        for (what, sig, body_params) in cases {
            let (status, _, text) =
                send(app(Some(TOKEN)), request(encode(&body_params), Some(sig))).await;
            assert_eq!(
                (status, text.as_str()),
                (StatusCode::FORBIDDEN, ""),
                "{what}"
            );
        }
    }

    #[tokio::test]
    async fn the_signed_url_never_comes_from_host_or_forwarded_headers() {
        let sig = sign(TOKEN, "https://evil.example/hook?seq=1", &params());
        let mut s = request(encode(&params()), Some(sig));
        s.extra = vec![
            ("host", "evil.example".into()),
            ("x-forwarded-host", "evil.example".into()),
            ("x-forwarded-proto", "https".into()),
        ];
        let (status, _, _) = send(app(Some(TOKEN)), s).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn oversized_bodies_are_413() {
        // No Content-Length: cut off while reading.
        let big = format!("CallSid=CA1&Pad={}", "x".repeat(MAX_WEBHOOK_BODY));
        let (status, _, text) = send(app(Some(TOKEN)), request(big, None)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(text.contains("64 KiB"), "{text}");
        // A declared length over the limit is refused before reading.
        let mut s = request("CallSid=CA1".into(), None);
        s.extra = vec![("content-length", (MAX_WEBHOOK_BODY + 1).to_string())];
        let (status, _, _) = send(app(Some(TOKEN)), s).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_limit_is_read() {
        let mut p = params();
        let so_far = encode(&p).len() + "&Pad=".len();
        p.push(("Pad".into(), "x".repeat(MAX_WEBHOOK_BODY - so_far)));
        let body = encode(&p);
        assert_eq!(body.len(), MAX_WEBHOOK_BODY);
        let sig = sign(TOKEN, &format!("{BASE}/hook?seq=1"), &p);
        let (status, _, text) = send(app(Some(TOKEN)), request(body, Some(sig))).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, PHONE));
    }

    #[tokio::test]
    async fn malformed_body_is_400_with_the_reason_in_plain_text() {
        for (body, reason) in [
            ("CallSid=CA1&From=%FF", "invalid UTF-8"),
            ("CallSid=CA1&From=100%", "malformed percent-escape"),
            ("CallSid=CA1&Name=Zo\u{eb}", "non-ASCII"),
        ] {
            let (status, headers, text) = send(app(Some(TOKEN)), request(body.into(), None)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(text.contains(reason), "{body}: {text}");
            assert!(!text.contains('<'), "no TwiML: {text}");
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            assert_eq!(ct, Some("text/plain; charset=utf-8"));
        }
    }

    #[tokio::test]
    async fn wrong_or_missing_content_type_is_415() {
        for ct in [
            Some("application/json"),
            Some("text/plain"),
            Some("multipart/form-data; boundary=x"),
            Some("application/x-www-form-urlencodedx"),
            None,
        ] {
            let mut s = signed();
            s.content_type = ct;
            let (status, _, text) = send(app(Some(TOKEN)), s).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
            assert!(text.contains("application/x-www-form-urlencoded"), "{text}");
        }
    }

    #[tokio::test]
    async fn checks_run_in_order_type_size_form_signature() {
        // Each request is also unsigned: the earlier check must win.
        let mut s = request("CallSid=CA1&From=%FF".into(), None);
        s.content_type = Some("application/json");
        assert_eq!(
            send(app(Some(TOKEN)), s).await.0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let big = format!("From=%FF&Pad={}", "x".repeat(MAX_WEBHOOK_BODY));
        assert_eq!(
            send(app(Some(TOKEN)), request(big, None)).await.0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            send(app(Some(TOKEN)), request("From=%FF".into(), None))
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
    }

    #[tokio::test]
    async fn insecure_mode_passes_unsigned_and_warns_every_time() {
        let rec = Recorder::default();
        let _guard = tracing::subscriber::set_default(rec.clone());
        for _ in 0..2 {
            let mut s = signed();
            s.signature = None;
            let (status, _, text) = send(app(None), s).await;
            assert_eq!((status, text.as_str()), (StatusCode::OK, PHONE));
        }
        let mut s = signed();
        s.signature = Some("garbage".into());
        assert_eq!(send(app(None), s).await.0, StatusCode::OK);
        let warnings: Vec<_> = rec
            .lines()
            .into_iter()
            .filter(|l| l.starts_with("WARN") && l.contains("NOT checked"))
            .collect();
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings.iter().all(|w| w.contains("path=\"/hook\"")));
        assert!(warnings.iter().all(|w| !w.contains("seq=")));
    }

    #[tokio::test]
    async fn refusal_is_logged_with_the_path_only() {
        let rec = Recorder::default();
        let _guard = tracing::subscriber::set_default(rec.clone());
        let mut s = signed();
        s.uri = "/hook?seq=1&caller=%2B447700900123";
        s.signature = Some(sign("wrong", BASE, &params()));
        assert_eq!(send(app(Some(TOKEN)), s).await.0, StatusCode::FORBIDDEN);
        let lines = rec.lines();
        let refusal: Vec<_> = lines
            .iter()
            .filter(|l| l.starts_with("WARN") && l.contains("signature check failed"))
            .collect();
        assert_eq!(refusal.len(), 1, "{lines:?}");
        assert!(refusal[0].contains("path=\"/hook\""), "{}", refusal[0]);
        assert!(refusal[0].contains("security=true"), "{}", refusal[0]);
        for line in &lines {
            for secret in ["447700900123", "seq=", "CA1234567890ABCDE", "ward", TOKEN] {
                assert!(!line.contains(secret), "{secret} leaked: {line}");
            }
        }
    }

    #[test]
    fn verify_reports_missing_and_mismatch() {
        let a = auth(Some(TOKEN));
        let form = WebhookForm::from_pairs(params());
        assert_eq!(
            a.verify("/hook?seq=1", &form, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            a.verify("/hook?seq=1", &form, Some("nope")),
            Err(SignatureError::Mismatch)
        );
        let good = sign(TOKEN, &format!("{BASE}/hook?seq=1"), &params());
        assert_eq!(a.verify("/hook?seq=1", &form, Some(&good)), Ok(()));
        assert_eq!(auth(None).verify("/hook", &form, None), Ok(()));
    }

    #[test]
    fn signed_url_and_accessors() {
        let a = WebhookAuth::new(
            Some(SecretString::from("t".to_string())),
            "https://example.org/helpline/",
        );
        assert_eq!(a.public_base_url(), "https://example.org/helpline");
        assert_eq!(
            a.signed_url("/twilio/voice?x=1"),
            "https://example.org/helpline/twilio/voice?x=1"
        );
        assert!(!a.is_insecure());
        assert!(auth(None).is_insecure());
        assert_eq!(path_only("/a/b?c=d?e"), "/a/b");
        assert_eq!(path_only("/a"), "/a");
    }

    #[test]
    fn debug_hides_the_token() {
        let a = auth(Some("hunter2"));
        let shown = format!("{a:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("redacted"),
            "{shown}"
        );
    }
}
