//! The webhook body parser (`src/twilio/form.rs`) on any bytes at all.
//!
//! Beyond "never panics":
//! - an accepted body reads exactly as the lenient WHATWG parser (`form_urlencoded`) reads it,
//!   so the strict parser never invents or drops a field, and each name appears once;
//! - the accepted fields, encoded again, parse back to the same form;
//! - `call_sid()` accepts only 1 to 64 ASCII letters and digits;
//! - a refused body is refused for the stated reason, and the reason names a field only when
//!   the name is short and plain (it never carries a value into a response or a log).
#![no_main]

use std::collections::HashSet;

use helpline::twilio::form::{FormError, WebhookForm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match WebhookForm::parse(body) {
        Ok(form) => accepted(body, &form),
        Err(e) => refused(body, &e),
    }
});

fn accepted(body: &[u8], form: &WebhookForm) {
    assert!(
        body.is_ascii(),
        "a body with raw non-ASCII bytes was accepted"
    );

    let lenient: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    assert_eq!(
        form.params(),
        lenient.as_slice(),
        "the strict and the WHATWG parser read an accepted body differently"
    );

    let mut names = HashSet::new();
    for (name, value) in form.params() {
        assert!(names.insert(name.as_str()), "{name:?} accepted twice");
        assert_eq!(form.get(name), Some(value.as_str()));
    }

    let again = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.params())
        .finish();
    assert_eq!(
        WebhookForm::parse(again.as_bytes()).as_ref(),
        Ok(form),
        "the fields encoded again do not parse back"
    );

    match form.call_sid() {
        Ok(sid) => assert!(
            (1..=64).contains(&sid.len()) && sid.bytes().all(|b| b.is_ascii_alphanumeric()),
            "CallSid {sid:?} accepted"
        ),
        Err(FormError::MissingCallSid) => assert_eq!(form.get("CallSid"), None),
        Err(FormError::BadCallSid) => assert!(form.get("CallSid").is_some()),
        Err(other) => panic!("call_sid() failed with {other:?}"),
    }
}

fn refused(body: &[u8], e: &FormError) {
    assert!(!e.to_string().is_empty());
    match e {
        FormError::NotUrlEncoded => assert!(!body.is_ascii(), "an ASCII body refused as not ASCII"),
        FormError::BadPercentEscape { field }
        | FormError::InvalidUtf8 { field }
        | FormError::DuplicateField { field } => {
            assert!(body.is_ascii());
            assert!(
                shown_safely(field),
                "the error shows the field as {field:?}"
            );
        }
        FormError::MissingCallSid | FormError::BadCallSid => {
            panic!("parse() checked the CallSid: {e:?}")
        }
    }
}

/// "(a field name)", or a name of at most 40 letters, digits, `_`, `-` and `.` in backticks.
fn shown_safely(field: &str) -> bool {
    if field == "(a field name)" {
        return true;
    }
    let Some(name) = field.strip_prefix('`').and_then(|f| f.strip_suffix('`')) else {
        return false;
    };
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
