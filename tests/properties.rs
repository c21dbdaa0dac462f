//! Property tests where a fuzzer does not fit in CI (issue 7): the webhook form parser,
//! the signature check, the call-flow loader and the bank-holiday feed parser take any
//! input without panicking, and do what they promise on the inputs they accept. proptest
//! draws hundreds of cases per property, shrinking any failure to a small one.

use helpline::flows::load::load_files;
use helpline::hours::{BankHolidays, Division};
use helpline::twilio::form::WebhookForm;
use helpline::twilio::signature;
use proptest::prelude::*;

const URL: &str = "https://helpline.example.nhs.uk/twilio/voice";

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::btree_map("[A-Za-z][A-Za-z0-9_]{0,12}", ".{0,40}", 0..12)
        .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes at all: a form or a reason, never a panic.
    #[test]
    fn the_form_parser_takes_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = WebhookForm::parse(&body);
    }

    /// What a browser or Twilio would encode comes back as it was sent.
    #[test]
    fn an_encoded_form_parses_back_to_its_fields(fields in pairs()) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        let form = WebhookForm::parse(body.as_bytes()).expect("an encoded form parses");
        prop_assert_eq!(form.params(), fields.as_slice());
    }

    /// A name sent twice is refused, however it is spelt.
    #[test]
    fn a_repeated_field_is_refused(fields in pairs(), i in any::<prop::sample::Index>()) {
        prop_assume!(!fields.is_empty());
        let (name, _) = &fields[i.index(fields.len())];
        let mut body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        body.push('&');
        body.push_str(&form_urlencoded::Serializer::new(String::new()).append_pair(name, "again").finish());
        prop_assert!(WebhookForm::parse(body.as_bytes()).is_err());
    }

    /// Twilio's signature for a request is accepted; any other string, or the same
    /// signature over any changed field, is not. Nothing panics.
    #[test]
    fn only_the_right_signature_is_accepted(
        token in "[a-f0-9]{32}",
        fields in pairs(),
        junk in ".{0,64}",
        changed in ".{1,20}",
    ) {
        let good = signature::compute(token.as_bytes(), URL, &fields);
        prop_assert!(signature::is_valid(token.as_bytes(), URL, &fields, &good));
        prop_assert!(!signature::is_valid(token.as_bytes(), URL, &fields, "") );
        if junk.trim() != good {
            prop_assert!(!signature::is_valid(token.as_bytes(), URL, &fields, &junk));
        }
        if let Some((name, value)) = fields.first() {
            let mut other = fields.clone();
            other[0] = (name.clone(), format!("{value}{changed}"));
            prop_assert!(!signature::is_valid(token.as_bytes(), URL, &other, &good));
        }
        let other_url = format!("{URL}?x=1");
        prop_assert!(!signature::is_valid(token.as_bytes(), &other_url, &fields, &good));
    }

    /// Any text as a call-flow file: a flow or a list of problems, never a panic.
    #[test]
    fn the_flow_loader_takes_any_text(text in ".{0,400}") {
        let _ = load_files(&[("helpline.toml".to_string(), text)], "property test");
    }

    /// The shipped flow with a piece cut out or a line repeated: loads or is refused with
    /// the problems named, never a panic.
    #[test]
    fn the_flow_loader_takes_damaged_flows(cut in any::<prop::sample::Index>(), len in 0usize..200) {
        let shipped = std::fs::read_to_string("call_flows/helpline.toml").expect("the shipped flow");
        let start = cut.index(shipped.len());
        let end = (start + len).min(shipped.len());
        let (start, end) = (floor(&shipped, start), floor(&shipped, end));
        let damaged = format!("{}{}", &shipped[..start], &shipped[end..]);
        match load_files(&[("helpline.toml".to_string(), damaged)], "property test") {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Any bytes as the GOV.UK feed: a calendar or a reason, never a panic.
    #[test]
    fn the_feed_parser_takes_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = BankHolidays::from_govuk_json(&body, Division::EnglandAndWales, "property test");
    }

    /// The real feed cut short anywhere is refused with a reason (or, cut after its end,
    /// still read), never a panic.
    #[test]
    fn the_feed_parser_takes_a_truncated_feed(at in any::<prop::sample::Index>()) {
        let feed = std::fs::read("data/bank-holidays.json").expect("the embedded feed");
        let cut = at.index(feed.len());
        let _ = BankHolidays::from_govuk_json(&feed[..cut], Division::EnglandAndWales, "property test");
    }
}

/// The nearest character boundary at or before `i`.
fn floor(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
