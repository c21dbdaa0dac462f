//! The command line, run as a user runs it.

use std::process::Command;

fn helpline(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args(args)
        .env("DATABASE_URL", "sqlite::memory:")
        .env_remove("HELPLINE_CONFIG")
        .env("HELPLINE_BANK_HOLIDAYS_URL", "off")
        .output()
        .expect("helpline runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn hours_json_open_and_closed() {
    let (code, out, _) = helpline(&["hours", "--at", "2026-11-24T15:59:59Z", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["open"], true);
    assert_eq!(v["next_open"], serde_json::Value::Null);
    assert!(v["reason"].is_string());

    let (code, out, _) = helpline(&["hours", "--at", "2026-12-24T16:00:00Z", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["open"], false);
    assert_eq!(v["next_open"], "2026-12-29T09:00:00+00:00");

    // Summer time: the offset is London's.
    let (_, out, _) = helpline(&["hours", "--at", "2027-03-26T12:00:00Z", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["open"], false, "Good Friday");
    assert!(v["reason"].as_str().unwrap().contains("Good Friday"), "{v}");
    assert_eq!(v["next_open"], "2027-03-30T09:00:00+01:00");
}

#[test]
fn hours_rejects_a_bad_instant() {
    let (code, _, err) = helpline(&["hours", "--at", "tomorrow"]);
    assert_ne!(code, 0);
    assert!(err.contains("RFC 3339"), "{err}");
}

#[test]
fn flows_check_passes_the_shipped_flow_and_lists_problems() {
    let (code, out, err) = helpline(&["flows", "check", "call_flows"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("OK"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("call_flows/helpline.toml")
        .unwrap()
        .replace("goto = \"fraud_advice\"", "goto = \"fraud_advise\"");
    std::fs::write(dir.path().join("helpline.toml"), text).unwrap();
    let (code, _, err) = helpline(&["flows", "check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("helpline.toml, node `main_menu`"), "{err}");
    assert!(
        err.contains("`fraud_advise`, which does not exist"),
        "{err}"
    );
    assert!(
        err.contains("is never reached"),
        "the orphaned node is reported too: {err}"
    );
}

#[test]
fn simulate_plays_a_callback_request_and_enquiries_list_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("sim.db").display());
    let (code, out, err) = helpline(&[
        "simulate",
        "--at",
        "2026-11-24T10:00:00Z",
        "--database",
        &db,
        "2",
        "1",
        "say:alder hey",
        "1",
        "say:please call me about my son's records",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("the line is open"), "{out}");
    assert!(
        out.contains("caller hears: Hello, and thank you for calling"),
        "{out}"
    );
    assert!(out.contains("Your reference number is"), "{out}");
    assert!(out.contains("[call ended]"), "{out}");

    let out = Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args(["enquiries", "list", "--json"])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 1);
    let e = &list[0];
    for field in [
        "reference",
        "call_sid",
        "callback_number",
        "trust",
        "category",
        "status",
        "created_at",
    ] {
        assert!(e.get(field).is_some(), "missing {field}: {e}");
    }
    assert_eq!(e["callback_number"], "+447700900123");
    assert_eq!(e["trust"], "alder-hey");
    assert_eq!(e["category"], "data-concern");
    assert_eq!(e["status"], "new");
}

#[test]
fn simulate_out_of_hours_uses_a_throwaway_database() {
    let (code, out, err) = helpline(&[
        "simulate",
        "--at",
        "2026-11-28T11:00:00Z",
        "--from",
        "anonymous",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("the line is closed"), "{out}");
    assert!(out.contains("0 3 0 0, 1 2 3, 2 0 4 0"), "{out}");
    assert!(
        out.contains("[no more input: the caller hangs up]"),
        "{out}"
    );
}

#[test]
fn serve_without_a_token_refuses_with_the_fix() {
    let out = Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args(["serve"])
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("TWILIO_AUTH_TOKEN_FILE")
        .env("HELPLINE_LISTEN", "127.0.0.1:0")
        .env("HELPLINE_BANK_HOLIDAYS_URL", "off")
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TWILIO_AUTH_TOKEN is not set") && err.contains("--insecure-dev"),
        "{err}"
    );
}

#[test]
fn serve_refuses_an_invalid_flow_naming_file_and_node() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        "[flow]\nstart = \"nowhere\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args(["serve"])
        .env("TWILIO_AUTH_TOKEN", "t")
        .env("HELPLINE_PUBLIC_URL", "https://helpline.example.nhs.uk")
        .env("HELPLINE_LISTEN", "127.0.0.1:0")
        .env("HELPLINE_BANK_HOLIDAYS_URL", "off")
        .env("DATABASE_URL", "sqlite::memory:")
        .env("HELPLINE_CALL_FLOWS", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.toml"), "{err}");
    assert!(err.contains("missing field"), "{err}");
}

#[test]
fn simulate_is_interactive_without_inputs() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args(["simulate", "--at", "2026-11-24T10:00:00Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"4\nsay:can I speak to someone\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("> "), "prompts for input: {out}");
    assert!(
        out.contains("Hospital services are running as normal. Please keep coming"),
        "{out}"
    );
    assert!(
        out.contains("Putting you through to an adviser"),
        "speech reached option 0: {out}"
    );
    assert!(out.contains("[end of input: the caller hangs up]"), "{out}");
}

#[test]
fn config_check_validates_without_starting() {
    let out = Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args(["config", "check", "--connect"])
        .env("DATABASE_URL", "sqlite::memory:")
        .env("TWILIO_AUTH_TOKEN", "very-secret")
        .env("HELPLINE_SCHEDULE", "Mon-Fri 08:00-18:00")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("configuration OK") && stdout.contains("Mon-Fri 08:00-18:00"),
        "{stdout}"
    );
    assert!(
        stdout.contains("set (hidden)") && !stdout.contains("very-secret"),
        "{stdout}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args(["config", "check"])
        .env("HELPLINE_VOICE", "Polly.Joanna")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HELPLINE_VOICE") && err.contains("fix:"),
        "{err}"
    );
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("new.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_helpline"))
        .args(["migrate"])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("new.db").exists());
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
}
