//! Login under attack, against the real binary: a flood of logins keeps the gateway's
//! memory flat (the excess is answered 503 with `Retry-After`), and guesses are
//! throttled with 429 per source address, per account and per (account, address)
//! failures — without ever locking the account's owner out.
//!
//! Every 127.x.y.z address reaches the gateway on 127.0.0.1 (Linux routes all of
//! 127/8 to loopback), so binding a client to 127.0.0.2 makes a second source.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tocsin_e2e::{Gateway, GatewayOptions, UserFixture};
use tocsin_protocol::http::LoginRequest;
use tocsin_protocol::{ErrorBody, ErrorCode};

/// Generous: before the fix, 200 concurrent argon2 runs of a debug build took a while.
const FLOOD_TIMEOUT: Duration = Duration::from_secs(180);

/// The gateway's peak RSS allowed during the flood. With two checks at a time it
/// stays near its idle size (~50 MiB measured); before the fix the same flood took
/// it to ~3.8 GiB (200 × 19 MiB), so 400 MiB separates the two clearly.
const MAX_PEAK_RSS_KIB: u64 = 400 * 1024;

fn dupont() -> GatewayOptions {
    GatewayOptions::with_tenants(&[("dupont", &["marie"])])
}

/// A login client whose connections come from one source address.
struct Source {
    client: reqwest::Client,
    url: String,
}

/// A login's answer: status, `Retry-After` (seconds) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: serde_json::Value,
}

impl Answer {
    fn error(&self) -> ErrorBody {
        serde_json::from_value(self.body.clone()).unwrap_or_else(|e| {
            panic!(
                "{} body is not an ErrorBody ({e}): {}",
                self.status, self.body
            )
        })
    }

    /// Asserts the documented shape of a refusal: code, `retry_after_ms`, and a
    /// `Retry-After` of the same delay in whole seconds (rounded up, at least 1).
    fn assert_refusal(&self, status: u16, code: ErrorCode) -> ErrorBody {
        assert_eq!(self.status, status, "{self:?}");
        let error = self.error();
        assert_eq!(error.code, code, "{self:?}");
        let ms = error
            .retry_after_ms
            .unwrap_or_else(|| panic!("no retry_after_ms: {self:?}"));
        assert!(ms >= 1, "{self:?}");
        assert_eq!(self.retry_after, Some(ms.div_ceil(1000).max(1)), "{self:?}");
        error
    }
}

impl Source {
    fn new(gw: &Gateway, ip: &str) -> Source {
        let ip: IpAddr = ip.parse().expect("a loopback address");
        let client = reqwest::Client::builder()
            .local_address(ip)
            .timeout(FLOOD_TIMEOUT)
            .build()
            .expect("a reqwest client can be built");
        Source {
            client,
            url: format!("http://{}/v1/auth/login", gw.addr()),
        }
    }

    async fn login(&self, email: &str, password: &str) -> Answer {
        let body = LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            device_name: "tocsin-e2e".to_owned(),
        };
        let response = self
            .client
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("login as {email}: {e}"));
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok()?.parse().ok());
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        Answer {
            status,
            retry_after,
            body,
        }
    }

    async fn login_as(&self, user: &UserFixture) -> Answer {
        self.login(&user.email, &user.password).await
    }
}

/// `VmHWM` (peak resident memory) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status is readable: {e}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

#[tokio::test]
async fn a_flood_of_logins_keeps_memory_flat_and_is_shed_with_503() {
    // Rate limits out of the way: this test is about the password checks themselves.
    // Two at a time (whatever the machine's cores), 300 ms of queueing at most.
    let gw = Gateway::start(GatewayOptions {
        login_per_ip_per_second: Some(1_000_000),
        login_per_ip_burst: Some(1_000_000),
        login_max_concurrent_hashes: Some(2),
        login_hash_queue_wait_ms: Some(300),
        ..dupont()
    })
    .await;
    let before = peak_rss_kib(gw.pid());
    let attacker = Source::new(&gw, "127.0.0.2");
    // Distinct unknown emails: each costs a full (dummy) argon2 verification, like a
    // wrong password, and none reaches a per-account limit.
    let emails: Vec<String> = (0..200)
        .map(|i| format!("nobody{i}@dupont.example"))
        .collect();
    let answers = join_all(emails.iter().map(|email| attacker.login(email, "guess"))).await;
    let peak = peak_rss_kib(gw.pid());
    eprintln!("gateway VmHWM: {before} KiB before the flood, {peak} KiB after");

    assert!(
        peak < MAX_PEAK_RSS_KIB,
        "the gateway's peak RSS reached {peak} KiB during 200 concurrent logins (limit {MAX_PEAK_RSS_KIB} KiB)"
    );
    for answer in answers.iter().filter(|a| a.status != 401) {
        let error = answer.assert_refusal(503, ErrorCode::Unavailable);
        assert!(
            error.message.contains("busy verifying passwords"),
            "{error:?}"
        );
    }
    assert!(
        count(&answers, 401) >= 2,
        "some logins were checked and refused"
    );
    assert!(
        count(&answers, 503) >= 100,
        "most waited 300 ms and were turned away"
    );
    let marie = gw.user("dupont", 0);
    let after = Source::new(&gw, "127.0.0.3").login_as(marie).await;
    assert_eq!(
        after.status, 200,
        "the gateway serves logins after the flood: {after:?}"
    );
}

#[tokio::test]
async fn guesses_against_one_account_get_429_but_its_owner_still_signs_in() {
    let gw = Gateway::start(dupont()).await;
    let marie = gw.user("dupont", 0);
    let attacker = Source::new(&gw, "127.0.0.2");
    let mut answers = Vec::new();
    let mut times = Vec::new();
    // The outside attack: 21 guesses as fast as the gateway answers.
    for i in 0..21 {
        let started = Instant::now();
        answers.push(attacker.login(&marie.email, &format!("guess-{i}")).await);
        times.push((started, Instant::now()));
    }
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses[..5], [401; 5], "five free attempts: {statuses:?}");
    // Past the free five, a guess is checked only once the delay since the last checked
    // one has passed (1 s, then 2 s, 4 s…). Where a password check itself takes longer
    // than the delay (a loaded machine, a debug build: ~2.5 s seen), the next guess may
    // be checked; it can never have come sooner than the delay after the previous
    // checked one started (the failure is recorded between the two).
    let mut delay = Duration::from_secs(1);
    let mut last_checked = times[4].0;
    for (answer, (started, answered)) in answers.iter().zip(&times).skip(5) {
        if answer.status == 401 {
            assert!(
                answered.duration_since(last_checked) >= delay,
                "a guess was checked sooner than {delay:?} after the previous one: {statuses:?}"
            );
            last_checked = *started;
            delay *= 2;
        } else {
            let error = answer.assert_refusal(429, ErrorCode::RateLimited);
            assert!(
                error.retry_after_ms <= Some(delay.as_millis() as u64),
                "{error:?}"
            );
        }
    }
    assert!(
        count(&answers, 429) >= 10,
        "most of the 21 quick guesses were refused unchecked: {statuses:?}"
    );
    // The right password from the throttled address is refused too: no oracle.
    attacker
        .login_as(marie)
        .await
        .assert_refusal(429, ErrorCode::RateLimited);

    let own = Source::new(&gw, "127.0.0.3").login_as(marie).await;
    assert_eq!(own.status, 200, "marie, from her own address: {own:?}");

    let log = gw.log_tail(500);
    let refusal = log
        .lines()
        .find(|line| line.contains("login refused by a rate limit"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(
        refusal.contains(&marie.email) && refusal.contains("127.0.0.2"),
        "{refusal}"
    );
    assert!(
        !log.contains("guess-"),
        "a password reached the log:\n{log}"
    );
}

#[tokio::test]
async fn a_burst_of_logins_from_one_address_gets_429() {
    let gw = Gateway::start(dupont()).await;
    let attacker = Source::new(&gw, "127.0.0.4");
    let emails: Vec<String> = (0..40)
        .map(|i| format!("nobody{i}@dupont.example"))
        .collect();
    let answers = join_all(emails.iter().map(|email| attacker.login(email, "guess"))).await;
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(
        limited.len() >= 10,
        "40 at once against a burst of 20 (10/s): {} got 429",
        limited.len()
    );
    for answer in limited {
        let error = answer.assert_refusal(429, ErrorCode::RateLimited);
        assert!(error.message.contains("from your address"), "{error:?}");
    }
    for answer in &answers {
        assert!(matches!(answer.status, 401 | 429 | 503), "{answer:?}");
    }
    let marie = gw.user("dupont", 0);
    let other = Source::new(&gw, "127.0.0.5").login_as(marie).await;
    assert_eq!(
        other.status, 200,
        "another address is not limited: {other:?}"
    );
}

#[tokio::test]
async fn guesses_from_many_addresses_throttle_the_account_but_not_its_owner() {
    let gw = Gateway::start(dupont()).await;
    let marie = gw.user("dupont", 0);
    let office = Source::new(&gw, "127.0.0.9");
    let first = office.login_as(marie).await;
    assert_eq!(
        first.status, 200,
        "marie signs in from her office: {first:?}"
    );

    // One guess from each of 15 addresses: no address earns a delay, but the account
    // allows a burst of 10 attempts, one of them marie's.
    // At once, so the account's refill (one per 12 s) cannot blur the count.
    let sources: Vec<Source> = (1..=15)
        .map(|i| Source::new(&gw, &format!("127.0.1.{i}")))
        .collect();
    let answers = join_all(sources.iter().map(|s| s.login(&marie.email, "guess"))).await;
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(limited.len() >= 5, "{answers:?}");
    for answer in limited {
        let error = answer.assert_refusal(429, ErrorCode::RateLimited);
        assert!(error.message.contains("for this account"), "{error:?}");
    }

    // A new address, even with the right password, waits for the account...
    let stranger = Source::new(&gw, "127.0.2.1").login_as(marie).await;
    stranger.assert_refusal(429, ErrorCode::RateLimited);
    // ...but the address marie signed in from is not locked out.
    let again = office.login_as(marie).await;
    assert_eq!(again.status, 200, "marie, from her office again: {again:?}");
}
