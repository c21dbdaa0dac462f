//! Two `helpline serve` processes on one PostgreSQL database, as a trust runs the line
//! behind a load balancer: any instance serves any step of a call, claims never collide,
//! and events reach every instance.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use helpline::events::{Event, Events};
use support::db::TestDb;
use support::{TestApp, PUBLIC, TOKEN};

/// A running `helpline serve`, killed when dropped.
struct Instance {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

async fn start(database_url: &str) -> Instance {
    let addr = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_helpline"))
        .arg("serve")
        .env("HELPLINE_LISTEN", addr.to_string())
        .env("DATABASE_URL", database_url)
        .envs(support::db::data_key_env(database_url))
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("HELPLINE_PUBLIC_URL", PUBLIC)
        .env("HELPLINE_BANK_HOLIDAYS_URL", "off")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("helpline serve starts");
    let instance = Instance { child, addr };
    let client = reqwest::Client::new();
    // Bounded wait for the process to listen.
    for _ in 0..150 {
        if let Ok(r) = client.get(format!("http://{addr}/healthz")).send().await {
            if r.status() == 200 {
                return instance;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("helpline serve on {addr} did not become healthy");
}

#[tokio::test]
async fn two_instances_on_one_database() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let url = db.url().to_string();
    // Both start at once: migrations run safely in parallel.
    let (a, b) = tokio::join!(start(&url), start(&url));
    let app = TestApp::remote(vec![a.addr, b.addr], db).await;

    // A listener on a third connection hears what either instance publishes.
    let listener = Events::postgres(&url).await.unwrap();
    let mut events = listener.subscribe();

    // One call, its steps alternating between the instances (a caller's request for a call
    // back works at any hour, so the real clock is fine).
    let mut call = app.call_from("+447700900123").await;
    call.press("2").await;
    call.press("1").await;
    call.press("3").await;
    call.press("1").await;
    call.leave_message(9).await;
    assert!(call.ended(), "{}", call.last());
    // Twilio retries the last webhook; it lands on the other instance.
    assert_eq!(call.retry_last().await, call.last_twiml);

    let enquiries = app.store.list_enquiries().await.unwrap();
    assert_eq!(
        enquiries.len(),
        1,
        "one enquiry, whichever instance served each step"
    );
    let e = &enquiries[0];
    assert_eq!(e.call_sid, call.sid);
    assert_eq!(e.trust.as_str(), "royal-liverpool");
    assert!(call.last().contains(&e.reference.spoken()));
    let steps = app.store.steps(&call.sid).await.unwrap();
    let seqs: Vec<u32> = steps.iter().map(|s| s.seq).collect();
    assert_eq!(
        seqs,
        (0..=5).collect::<Vec<_>>(),
        "every step once, none lost or doubled: {steps:?}"
    );

    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::EnquiryCreated { id }) = events.recv().await {
                return id;
            }
        }
    })
    .await
    .expect("the enquiry-created event reached another instance");
    assert_eq!(heard, e.id);

    // An event published through one instance's channel is received by another's.
    let other = Events::postgres(&url).await.unwrap();
    let mut rx = other.subscribe();
    listener
        .publish(&Event::QueueJoined {
            call_sid: "CA-X".into(),
        })
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("event in time")
        .unwrap();
    assert_eq!(
        got,
        Event::QueueJoined {
            call_sid: "CA-X".into()
        }
    );

    // A closure added through either instance (here straight into the database, as the CLI
    // does) applies on both within HELPLINE_CHANGES_CHECK_MS (default 1 s).
    let now = chrono::Utc::now();
    app.store
        .add_closure(&helpline::store::NewClosure {
            kind: helpline::hours::ClosureKind::Closed,
            from: now - chrono::Duration::minutes(1),
            until: now + chrono::Duration::hours(1),
            reason: "The line is closed for a team briefing".into(),
            created_at: now,
        })
        .await
        .unwrap();
    // Each call is one request, and requests alternate between the instances: two closed
    // calls in a row means both have it.
    let started = std::time::Instant::now();
    let mut in_a_row = 0;
    while in_a_row < 2 {
        let c = app.call_from("+447700900999").await;
        if c.last().contains("The line is closed for a team briefing.") {
            in_a_row += 1;
        } else {
            in_a_row = 0;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the closure did not reach both instances: {}",
            c.last()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Handlers on both instances claiming at once: each enquiry exactly one owner.
    let second = helpline::store::connect(&url).await.unwrap();
    let won = support::fifty_claims_for_ten(app.store.clone(), second).await;
    assert_eq!(
        won.len(),
        11,
        "the call's enquiry and the 10 new ones, each claimed once: {won:?}"
    );
    drop((a, b));
}
