//! handler-twilio end to end: fixtures in, requests checked by the fake Twilio.

use serde_json::{Value, json};

use crate::fake::twilio::{ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, AUTH_TOKEN, FakeTwilio, Script};
use crate::util::{Run, Sandbox, read_fixture};

const BIN: &str = env!("CARGO_BIN_EXE_handler-twilio");
const CALLS: &str = "Calls.json";
const MESSAGES: &str = "Messages.json";
const FROM: &str = "+14155550199";
const ONE: &str = "+14155550101";
const TWO: &str = "+14155550102";
const THREE: &str = "+819012345678";

/// A sandbox whose `twilio` section has the fake's account, the auth token, `from`, three
/// recipients, and `extra` laid over.
fn sandbox(extra: Value) -> Sandbox {
    let sb = Sandbox::new(BIN);
    let mut section = json!({"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": FROM,
        "recipients": [ONE, {"name": "Bob", "phone": TWO}, {"name": "花子", "phone": THREE}]});
    if let (Some(s), Value::Object(extra)) = (section.as_object_mut(), extra) {
        s.extend(extra);
    }
    sb.config("twilio.json", &json!({ "twilio": section }));
    sb
}

fn run(sb: &Sandbox, fake: &FakeTwilio, input: &[u8], extra: &[&str]) -> Run {
    let mut args = vec!["--api-url", fake.url.as_str()];
    args.extend_from_slice(extra);
    sb.run(&args, input)
}

/// The one spoken text of an accepted call.
fn spoken(call: &crate::fake::twilio::Accepted) -> String {
    let t = call.twiml.as_ref().expect("the call carries Twiml");
    assert_eq!(t.say.len(), 1, "{t:?}");
    t.say[0].clone()
}

#[test]
fn broadcast_calls_every_recipient_and_remembers_the_call_sids() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let calls = fake.to(CALLS);
    assert_eq!(calls.iter().map(|c| c.param("To").unwrap_or("")).collect::<Vec<_>>(), vec![ONE, TWO, THREE]);
    for c in &calls {
        assert_eq!(c.params.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), vec!["To", "From", "Twiml", "Timeout"]);
        assert_eq!((c.param("From"), c.param("Timeout"), c.param("Url")), (Some(FROM), Some("30"), None));
        assert_eq!(spoken(c), "web-01 check_disk is critical. CheckDisk CRITICAL: / 95.2% used (45G of 47G)");
        let t = c.twiml.as_ref().unwrap();
        assert_eq!(t.elements, vec!["Response", "Say"]);
        assert_eq!(t.say_attrs, vec![("language".to_string(), "en-US".to_string()), ("loop".to_string(), "2".to_string())]);
    }
    assert!(fake.to(MESSAGES).is_empty());
    let sids: Vec<String> = calls.iter().map(|c| c.sid.clone()).collect();
    assert!(r.stderr.contains(&format!("twilio: triggered web-01/check_disk (3 of 3 requests accepted: call {})", sids.join(", "))), "{}", r.stderr);
    let st = sb.state("twilio", "web-01%2Fcheck_disk.json");
    assert_eq!(st["refs"]["call_sids"], json!(sids));
    // Within refresh the same event calls nobody again.
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.accepted().len(), 3);
}

#[test]
fn conference_puts_everyone_who_answers_in_one_bridge_named_after_the_incident() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"conference": true, "voice": "alice", "loop": 1, "ring_timeout": 45}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    for c in fake.to(CALLS) {
        let t = c.twiml.as_ref().unwrap();
        assert_eq!(t.elements, vec!["Response", "Say", "Dial", "Conference"]);
        assert_eq!(t.conference.as_deref(), Some("web-01/check_disk"));
        assert_eq!(t.say_attrs, vec![("language".to_string(), "en-US".to_string()), ("voice".to_string(), "alice".to_string())]);
        assert_eq!(c.param("Timeout"), Some("45"));
    }
}

#[test]
fn twiml_in_check_output_is_read_out_as_text() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"recipients": [ONE]}));
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["check"]["output"] = "x</Say><Dial>+19005550100</Dial><Say>&amp; \"y\"\n".into();
    let r = run(&sb, &fake, ev.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let call = &fake.to(CALLS)[0];
    assert_eq!(call.twiml.as_ref().unwrap().elements, vec!["Response", "Say"], "no <Dial> was injected");
    assert_eq!(spoken(call), "web-01 check_disk is critical. x</Say><Dial>+19005550100</Dial><Say>&amp; \"y\"");
}

#[test]
fn a_long_japanese_message_is_spoken_in_japanese_within_4000_characters() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"language": "ja-JP", "voice": "Polly.Mizuki", "message": "{entity} の {check} が {status} です。{output}",
        "conference": true}));
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/japanese-long.json")).unwrap();
    ev["check"]["output"] = "ディスク使用率が閾値を超えました <95%> & ".repeat(300).into();
    let r = run(&sb, &fake, ev.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let call = &fake.to(CALLS)[0];
    let doc = call.param("Twiml").unwrap();
    assert!(doc.chars().count() <= 4000 && doc.chars().count() > 3900, "{}", doc.chars().count());
    assert!(doc.ends_with("</Say><Dial><Conference>db-tokyo-01/check_log</Conference></Dial></Response>"), "{doc}");
    let t = call.twiml.as_ref().unwrap();
    assert!(t.say_attrs.contains(&("language".to_string(), "ja-JP".to_string())), "{t:?}");
    let text = spoken(call);
    assert!(text.starts_with("db-tokyo-01 の check_log が critical です。ディスク使用率が閾値を超えました <95%> & "), "{text}");
    assert!(text.ends_with('…'), "the output was shortened: {text}");
}

#[test]
fn sms_channel_texts_everyone_and_resolve_sends_a_resolved_sms_but_never_calls() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"channels": ["voice", "sms"], "notify_on_resolve": true}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!((fake.to(CALLS).len(), fake.to(MESSAGES).len()), (3, 3));
    let sms = &fake.to(MESSAGES)[0];
    assert_eq!(sms.param("Body"), Some("web-01 check_disk is critical. CheckDisk CRITICAL: / 95.2% used (45G of 47G)"));
    assert!(sms.sid.starts_with("SM"));
    let st = sb.state("twilio", "web-01%2Fcheck_disk.json");
    assert_eq!(st["refs"]["message_sids"].as_array().map(Vec::len), Some(3));
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(fake.to(CALLS).len(), 3, "a resolve never calls");
    let resolved = fake.to(MESSAGES);
    assert_eq!(resolved.len(), 6);
    assert_eq!(resolved[5].param("Body"), Some("RESOLVED: web-01 check_disk is ok. CheckDisk OK: / 61.0% used"));
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["open"], false);
}

#[test]
fn resolve_without_notify_on_resolve_sends_nothing_and_closes_the_incident() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({}));
    assert_eq!(run(&sb, &fake, &read_fixture("sensu/create.json"), &[]).code, Some(0));
    let r = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.accepted().len(), 3);
    assert!(r.stderr.contains("no call on resolve"), "{}", r.stderr);
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["open"], false);
}

#[test]
fn a_number_that_is_not_e164_exits_78_naming_it() {
    let fake = FakeTwilio::start(&[]);
    for (extra, named) in [
        (json!({"recipients": [ONE, {"name": "Bob", "phone": "090-1234-5678"}]}), "twilio.recipients[1]"),
        (json!({"from": "4155550199"}), "twilio.from"),
    ] {
        let sb = sandbox(extra);
        let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
        assert_eq!(r.code, Some(78), "{r:?}");
        assert!(r.stderr.contains(named) && r.stderr.contains("E.164"), "{}", r.stderr);
    }
    assert!(fake.accepted().is_empty() && fake.violations().is_empty());
}

#[test]
fn bad_credentials_exit_69_with_twilios_error() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"auth_token": "not-the-token-000000000000"}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("HTTP 401 Twilio error 20003: Authenticate"), "{}", r.stderr);
    assert!(r.stderr.contains("https://www.twilio.com/docs/errors/20003"), "{}", r.stderr);
    assert!(!r.stderr.contains("not-the-token-000000000000"), "the token is masked: {}", r.stderr);
    // Scripted: the account's token was revoked.
    let fake = FakeTwilio::start(&[Script::Unauthorized, Script::Unauthorized, Script::Unauthorized]);
    let r = run(&sandbox(json!({})), &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(69), "{r:?}");
}

#[test]
fn an_invalid_number_is_named_and_the_others_are_still_called() {
    let fake = FakeTwilio::start(&[Script::Accept, Script::InvalidTo]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains(&format!("call to Bob {TWO} failed: HTTP 400 Twilio error 21211")), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("(To {TWO}: check twilio.recipients)")), "{}", r.stderr);
    assert!(r.stderr.contains("(2 of 3 requests accepted"), "{}", r.stderr);
    // Nobody reachable: permanent.
    let fake = FakeTwilio::start(&[Script::InvalidTo]);
    let r = run(&sandbox(json!({"recipients": [ONE]})), &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains(&format!("To {ONE}")), "{}", r.stderr);
}

#[test]
fn rate_limits_and_server_errors_are_retried_then_exit_75() {
    let fake = FakeTwilio::start(&[Script::RateLimited, Script::ServerError]);
    let sb = sandbox(json!({"recipients": [ONE]}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.to(CALLS).len(), 1);
    assert!(r.stderr.contains("attempt 1 failed: HTTP 429 Twilio error 20429: Too Many Requests"), "{}", r.stderr);
    let fake = FakeTwilio::start(&[Script::ServerError; 50]);
    let r = run(&sandbox(json!({"recipients": [ONE]})), &fake, &read_fixture("sensu/create.json"), &["--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
}

#[test]
fn dry_run_prints_the_form_bodies_with_credentials_masked() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"auth_token": null}));
    let mut cmd = sb.command(&["--api-url", &fake.url, "--dry-run", "-v"]);
    cmd.env("TWILIO_AUTH_TOKEN", AUTH_TOKEN);
    let r = crate::util::run_command(cmd, &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    let bodies: Vec<Value> = serde_json::Deserializer::from_str(&r.stdout).into_iter().collect::<Result<_, _>>().expect("JSON bodies");
    assert_eq!(bodies.len(), 3);
    assert_eq!(bodies[1]["To"], TWO);
    assert!(bodies[1]["Twiml"].as_str().is_some_and(|t| t.starts_with("<Response><Say")));
    assert!(r.stderr.contains(&format!("dry run: would POST {}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json", fake.url)), "{}", r.stderr);
    assert!(!r.stdout.contains(AUTH_TOKEN) && !r.stderr.contains(AUTH_TOKEN), "{}", r.stderr);
    assert!(fake.accepted().is_empty());
    assert_eq!(std::fs::read_dir(sb.state_dir()).unwrap().count(), 0, "no state written");
}

#[test]
fn an_api_key_authenticates_with_the_account_sid_in_the_path() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"auth_token": null, "api_key_sid": API_KEY_SID, "recipients": [ONE]}));
    let mut cmd = sb.command(&["--api-url", &fake.url]);
    cmd.env("TWILIO_API_KEY_SECRET", API_KEY_SECRET);
    let r = crate::util::run_command(cmd, &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(fake.to(CALLS).len(), 1);
}
