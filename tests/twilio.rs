//! handler-twilio end to end: fixtures in, requests checked by the fake Twilio.

use serde_json::{Value, json};

use crate::fake::twilio::{ACCOUNT_SID, API_KEY_SECRET, API_KEY_SID, AUTH_TOKEN, FakeTwilio, Outcome, Script};
use crate::util::{REFUSED_URL, Run, Sandbox, fixture_at, laid_over, read_fixture, require_program, run_command, twilio_sandbox};

const BIN: &str = env!("CARGO_BIN_EXE_handler-twilio");
const CALLS: &str = "Calls.json";
const MESSAGES: &str = "Messages.json";
const FROM: &str = "+14155550199";
const ONE: &str = "+14155550101";
const TWO: &str = "+14155550102";
const THREE: &str = "+819012345678";
const FOUR: &str = "+14155550104";
/// 2026-11-21T00:00:00Z (09:00 in Tokyo), for `PAGERPIPE_NOW`.
const NOV21: u64 = 1_795_219_200;

/// A sandbox whose `twilio` section has the fake's account, the auth token, `from`, three
/// recipients, and `extra` laid over.
fn sandbox(extra: Value) -> Sandbox {
    let recipients = json!({"recipients": [ONE, {"name": "Bob", "phone": TWO}, {"name": "花子", "phone": THREE}]});
    twilio_sandbox(laid_over(recipients, extra))
}

fn run(sb: &Sandbox, fake: &FakeTwilio, input: &[u8], extra: &[&str]) -> Run {
    let mut args = vec!["--api-url", fake.url.as_str()];
    args.extend_from_slice(extra);
    sb.run(&args, input)
}

/// The length of an accepted call's TwiML as it is heard with `loop` (the default, 2, unless
/// the test sets it), in UTF-16 code units: the document, plus its `<Say>` text (escaped, as
/// sent) once more for every loop after the first. At most Twilio's 4000 (twiml::fitted).
fn heard_units(call: &crate::fake::twilio::Accepted, loops: usize) -> usize {
    let doc = call.param("Twiml").expect("the call carries Twiml");
    let (_, rest) = doc.split_once("<Say").expect("a <Say>");
    let said = rest.split_once('>').and_then(|(_, r)| r.split_once("</Say>")).map(|(t, _)| t).expect("a </Say>");
    common::template::utf16_len(doc) + common::template::utf16_len(said) * (loops - 1)
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
    assert!(
        r.stderr.contains(&format!("twilio: triggered web-01/check_disk (3 of 3 requests accepted: call {})", sids.join(", "))),
        "{}",
        r.stderr
    );
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
fn a_conference_for_a_long_incident_key_keeps_the_twiml_within_4000_characters() {
    // The bridge is named after the incident key, which the host and check names make: a
    // 5000-character entity name made a TwiML of over 5000 characters that Twilio refuses
    // (21205), and nobody was called. The name is cut (with a hash of the whole key), the same
    // for every call of the incident.
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"conference": true}));
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["client"]["name"] = "e".repeat(5000).into();
    let r = run(&sb, &fake, ev.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let calls = fake.to(CALLS);
    assert_eq!(calls.len(), 3, "{r:?}");
    let names: Vec<String> = calls.iter().map(|c| c.twiml.as_ref().unwrap().conference.clone().expect("a conference")).collect();
    assert!(names.iter().all(|n| n == &names[0]), "one bridge: {names:?}");
    let name = &names[0];
    assert_eq!(name.chars().count(), 128, "{name}");
    assert!(name.starts_with("eeee") && name.contains('~'), "{name}");
    for c in &calls {
        assert!(common::template::utf16_len(c.param("Twiml").unwrap()) <= 4000);
    }
    // Another long key gets a bridge of its own.
    ev["client"]["name"] = format!("{}f", "e".repeat(4999)).into();
    let r = run(&sb, &fake, ev.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let other = fake.to(CALLS)[3].twiml.as_ref().unwrap().conference.clone().unwrap();
    assert_ne!(&other, name);
}

#[test]
fn a_huge_entity_of_characters_xml_escapes_is_still_spoken_cut_to_fit() {
    // When the message without the output is too long, the text itself is cut. It was cut by
    // the excess in characters, but `<` takes 4 in the TwiML: an entity of 16 000 `<e>` was cut
    // to nothing, an empty <Say>, which Twilio refuses when the call is answered (13520).
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"recipients": [ONE]}));
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["client"]["name"] = "<e>".repeat(16_000).into();
    let r = run(&sb, &fake, ev.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let call = &fake.to(CALLS)[0];
    let said = spoken(call);
    assert!(said.starts_with("<e><e><e>") && said.ends_with('…'), "{said}");
    // Spoken twice (the default `loop`): the whole message, both times, within 4000.
    let units = heard_units(call, 2);
    assert!(units <= 4000 && units > 3990, "{units}");
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

/// Twilio counts its limits so that an emoji reaches them "sooner than expected" (error 21617):
/// an SMS of 1600 emoji was cut to 1600 characters, 3200 UTF-16 code units, and a stricter
/// count refuses it for good. Both limits are now counted in UTF-16 code units.
#[test]
fn an_output_of_emoji_fits_twilios_limits_counted_in_utf16() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"channels": ["voice", "sms"], "message": "{output}"}));
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["check"]["output"] = "🔥".repeat(5000).into();
    let r = run(&sb, &fake, ev.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let body = fake.to(MESSAGES)[0].param("Body").unwrap().to_string();
    let units = common::template::utf16_len(&body);
    assert!((1599..=1600).contains(&units) && body.ends_with('…'), "{units}: {body}");
    let units = heard_units(&fake.to(CALLS)[0], 2);
    assert!(units <= 4000 && units > 3900, "{units}");
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
    let units = heard_units(call, 2);
    assert!(units <= 4000 && units > 3900, "{units}");
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
fn an_sms_template_that_renders_nothing_sends_the_default_message() {
    // A message of `{output}` alone and a check that printed nothing: the Body was empty, which
    // Twilio refuses (21602, one of Body/MediaUrl/ContentSid is required), and the SMS page was
    // lost (exit 69). The language's default message goes out instead.
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"channels": ["sms"], "message": "{output}", "resolve_message": " {output}", "notify_on_resolve": true}));
    let event = |status: u32| {
        json!({"client": {"name": "web-01"}, "check": {"name": "check_disk", "status": status, "output": ""}}).to_string().into_bytes()
    };
    let r = run(&sb, &fake, &event(2), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = run(&sb, &fake, &event(0), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let bodies: Vec<String> = fake.to(MESSAGES).iter().map(|m| m.param("Body").unwrap_or("").to_string()).collect();
    assert_eq!(bodies.len(), 6, "{bodies:?}");
    assert_eq!(bodies[0].trim(), "web-01 check_disk is critical.");
    assert_eq!(bodies[5].trim(), "RESOLVED: web-01 check_disk is ok.");
}

#[test]
fn a_call_template_that_renders_nothing_speaks_the_default_message() {
    // The same template and check for a call: the Twiml's <Say> was empty, which Twilio
    // cannot speak (error 13520, "Say: Invalid text", when the call is answered): the phone
    // rang and the person who answered heard nothing about the incident.
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"message": "{output}"}));
    let event = json!({"client": {"name": "web-01"}, "check": {"name": "check_disk", "status": 2, "output": " "}});
    let r = run(&sb, &fake, event.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let calls = fake.to(CALLS);
    assert_eq!(calls.len(), 3);
    assert_eq!(spoken(&calls[0]).trim(), "web-01 check_disk is critical.");
}

/// A change of severity while the incident is open is a new page (docs/twilio.md): critical,
/// then warning, calls everyone twice; the warning's repeat calls nobody.
#[test]
fn a_change_of_severity_calls_everyone_again_and_its_repeat_nobody() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({}));
    let at = |status: u32, executed: i64| {
        let mut ev: Value = serde_json::from_slice(&fixture_at("sensu/create.json", executed)).unwrap();
        ev["check"]["status"] = status.into();
        serde_json::to_vec(&ev).unwrap()
    };
    let now = common::clock::now_unix() as i64;
    assert_eq!(run(&sb, &fake, &at(2, now - 30), &[]).code, Some(0));
    let r = run(&sb, &fake, &at(1, now - 20), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let calls = fake.to(CALLS);
    assert_eq!(calls.iter().map(|c| c.param("To").unwrap_or("")).collect::<Vec<_>>(), vec![ONE, TWO, THREE, ONE, TWO, THREE]);
    assert!(spoken(&calls[3]).starts_with("web-01 check_disk is warning."), "{}", spoken(&calls[3]));
    let r = run(&sb, &fake, &at(1, now - 10), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.to(CALLS).len(), 6, "{}", r.stderr);
    fake.assert_no_violations();
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
fn rate_limits_are_retried_and_server_errors_spooled_then_exit_75() {
    let fake = FakeTwilio::start(&[Script::RateLimited, Script::RateLimited]);
    let sb = sandbox(json!({"recipients": [ONE]}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.to(CALLS).len(), 1);
    assert!(r.stderr.contains("attempt 1 failed: HTTP 429 Twilio error 20429: Too Many Requests"), "{}", r.stderr);
    // A call's 5xx is of unknown fate: not sent again at once (the flush looks it up first).
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

/// Settings for sequential mode that finish quickly against the fake: status checks every
/// 20 ms (a real run waits 3 s between them), a 5 s ring timeout, and `extra` laid over.
fn sequential(extra: Value) -> Value {
    let v = json!({"mode": "sequential", "poll_interval": "20ms", "ring_timeout": 5,
        "recipients": [ONE, {"name": "Bob", "phone": TWO}, {"name": "花子", "phone": THREE}, {"name": "Dan", "phone": FOUR}]});
    laid_over(v, extra)
}

/// The fixture event with its check renamed, a new incident.
fn event_for_check(check: &str) -> Vec<u8> {
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).expect("fixture JSON");
    ev["check"]["name"] = check.into();
    ev.to_string().into_bytes()
}

/// Run with `PAGERPIPE_NOW` set to `now`.
fn run_at(sb: &Sandbox, fake: &FakeTwilio, now: u64, input: &[u8], extra: &[&str]) -> Run {
    let mut args = vec!["--api-url", fake.url.as_str()];
    args.extend_from_slice(extra);
    let mut cmd = sb.command(&args);
    cmd.env("PAGERPIPE_NOW", now.to_string());
    run_command(cmd, input)
}

fn called(fake: &FakeTwilio) -> Vec<String> {
    fake.calls().iter().map(|c| c.to.clone()).collect()
}

#[test]
fn sequential_calls_one_at_a_time_and_stops_at_the_first_person_who_answers() {
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::NoAnswer, Outcome::Busy, Outcome::Answered]);
    let sb = sandbox(sequential(json!({"mode": "broadcast"})));
    // --mode wins over the file.
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--mode", "sequential", "--timeout", "60s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(called(&fake), vec![ONE, TWO, THREE], "exactly three calls; Dan ({FOUR}) is never called");
    for c in fake.calls() {
        assert!(c.fetches >= 2, "each call was followed until it ended: {c:?}");
    }
    assert!(fake.updates().is_empty(), "nothing to cancel");
    assert!(r.stderr.contains(&format!("twilio: call 1 to {ONE}: no-answer")), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("twilio: call 2 to Bob {TWO}: busy")), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("twilio: call 3 to 花子 {THREE}: completed after 12 s")), "{}", r.stderr);
    let sids: Vec<String> = fake.calls().iter().map(|c| c.sid.clone()).collect();
    assert!(
        r.stderr.contains(&format!("twilio: triggered web-01/check_disk (answered by 花子 {THREE} on call 3: calls {})", sids.join(", "))),
        "{}",
        r.stderr
    );
    let st = sb.state("twilio", "web-01%2Fcheck_disk.json");
    assert_eq!(st["refs"]["call_sids"], json!(sids));
    assert_eq!(st["refs"]["answered"], json!({"sid": sids[2], "phone": THREE, "name": "花子"}));
    assert_eq!(st["open"], true);
    // Each call took a slot under its recipient's caps, in a record apart from the incidents.
    let caps = sb.state("twilio", "recipients%3Acalls.json");
    for (to, n) in [(ONE, Some(1)), (TWO, Some(1)), (THREE, Some(1)), (FOUR, None)] {
        assert_eq!(caps["calls"].get(to).and_then(Value::as_array).map(Vec::len), n, "{to}: {caps}");
    }
}

#[test]
fn sequential_with_machine_detection_moves_on_from_a_voicemail_and_texts_only_those_it_calls() {
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Voicemail, Outcome::Answered]);
    let sb = sandbox(sequential(json!({"machine_detection": "Enable", "pause": 1, "channels": ["voice", "sms"]})));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(called(&fake), vec![ONE, TWO]);
    for c in fake.to(CALLS) {
        assert_eq!(c.param("MachineDetection"), Some("Enable"));
        let t = c.twiml.as_ref().expect("Twiml");
        assert_eq!(t.elements, vec!["Response", "Pause", "Say"]);
        assert_eq!(t.pause.as_deref(), Some("1"));
    }
    assert!(r.stderr.contains(&format!("call 1 to {ONE}: completed after 20 s, answered by machine_end_beep")), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("answered by Bob {TWO} on call 2")), "{}", r.stderr);
    // Texted right before their call: the two who were called, not the others.
    let sms: Vec<String> = fake.to(MESSAGES).iter().map(|m| m.param("To").unwrap_or("").to_string()).collect();
    assert_eq!(sms, vec![ONE, TWO]);
    let order: Vec<String> = fake.accepted().into_iter().map(|a| a.resource).collect();
    assert_eq!(order, vec![MESSAGES, CALLS, MESSAGES, CALLS]);
}

/// A text refused for good (a number that is not valid, or replied STOP) is not sent again
/// before that person's next call: every round asked again, and logged the same refusal again.
/// (One that surely did not go out is: nothing else would send it.)
#[test]
fn sequential_does_not_text_again_a_number_twilio_refused_for_good() {
    // The first request, the text to the first person, is refused; every call rings out but
    // the last, which the first person answers in round 2.
    let fake = FakeTwilio::start(&[Script::InvalidTo]);
    fake.outcomes(&[Outcome::NoAnswer, Outcome::NoAnswer, Outcome::Answered]);
    let sb = sandbox(sequential(json!({"channels": ["voice", "sms"], "recipients": [ONE, {"name": "Bob", "phone": TWO}]})));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(called(&fake), vec![ONE, TWO, ONE], "{}", r.stderr);
    assert_eq!(r.stderr.matches(&format!("SMS to {ONE} failed")).count(), 1, "{}", r.stderr);
    let sms: Vec<String> = fake.to(MESSAGES).iter().map(|m| m.param("To").unwrap_or("").to_string()).collect();
    assert_eq!(sms, vec![TWO], "{}", r.stderr);
    let order: Vec<String> = fake.accepted().into_iter().map(|a| a.resource).collect();
    assert_eq!(order, vec![CALLS, MESSAGES, CALLS, CALLS]);
}

#[test]
fn sequential_goes_round_the_list_rounds_times_then_exits_75_and_tries_again_next_event() {
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::NoAnswer, Outcome::Busy, Outcome::Failed, Outcome::NoAnswer]);
    let sb = sandbox(sequential(json!({"recipients": [ONE, TWO], "rounds": 2})));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(called(&fake), vec![ONE, TWO, ONE, TWO]);
    assert!(r.stderr.contains("nobody answered calls"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("in 2 rounds ({ONE}: no-answer; {TWO}: busy; {ONE}: failed; {TWO}: no-answer)")), "{}", r.stderr);
    // Nothing was recorded, not even the notes of the calls (the run ended; nothing to carry
    // on from): the next event for the incident calls again, from the top.
    assert!(!sb.state_dir().join("twilio").join("web-01%2Fcheck_disk.json").exists(), "no record left");
    // Not spooled (docs/twilio.md): the run was carried out in full and reached nobody, unlike
    // one that could not reach Twilio; a flush would only ring everyone again at once. The
    // event is logged whole, as for every page not delivered and not kept.
    assert!(sb.spooled("twilio").is_empty(), "{:?}", sb.spooled("twilio"));
    assert!(r.stderr.contains("undelivered event, not spooled: {"), "{}", r.stderr);
    let r = sb.run(&["--flush", "--api-url", &fake.url], b"");
    assert_eq!((r.code, fake.calls().len()), (Some(0), 4), "{r:?}");
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(called(&fake), vec![ONE, TWO, ONE, TWO, ONE]);
}

#[test]
fn sequential_stops_and_cancels_the_ringing_call_when_the_incident_is_resolved_meanwhile() {
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing]);
    let sb = sandbox(sequential(json!({})));
    let mut cmd = sb.command(&["--api-url", &fake.url, "--timeout", "60s"]);
    let mut calling = cmd.spawn().expect("spawn handler");
    {
        use std::io::Write;
        let mut stdin = calling.stdin.take().expect("stdin");
        stdin.write_all(&read_fixture("sensu/create.json")).expect("write the event");
    }
    // Once the first call is ringing (the handler is polling it), the check recovers.
    fake.wait_for("the first call being polled", |calls| calls.len() == 1 && calls[0].fetches >= 1);
    let resolve = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &["--timeout", "60s"]);
    assert_eq!(resolve.code, Some(0), "{resolve:?}");
    let out = calling.wait_with_output().expect("wait handler");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    fake.assert_no_violations();
    assert_eq!(called(&fake), vec![ONE], "nobody after the first is called: {stderr}");
    let calls = fake.calls();
    assert!(calls[0].canceled, "the ringing call was cancelled: {calls:?}");
    assert_eq!(fake.updates(), vec![(calls[0].sid.clone(), vec![("Status".to_string(), "canceled".to_string())])]);
    assert!(stderr.contains("stopped: web-01/check_disk was resolved meanwhile"), "{stderr}");
    let st = sb.state("twilio", "web-01%2Fcheck_disk.json");
    assert_eq!(st["open"], false, "the resolve stays recorded");
    assert_eq!(st["refs"]["call_sids"], json!([calls[0].sid]));
}

/// Icinga 2 (and Nagios without `$SERVICEEVENTID$`) gives no event id, so the events of one
/// second are applied in the order they arrive: a PROBLEM that comes right after a RECOVERY
/// of the same `$TIMET$` (a passive result OK, then CRITICAL) reopens the incident, "a page
/// left open, never one lost" (README "Event order"). The ledger sends it, so the run must
/// call. Before, the run took the recorded recovery of the same second for one that came
/// after its own event and stopped before its first call: nobody was called, exit 0.
#[test]
fn sequential_calls_for_a_problem_applied_after_a_recovery_of_the_same_second() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(sequential(json!({})));
    let t = crate::util::unix_now() - 5;
    let notify = |kind: &str, state: &str, timet: i64| {
        let mut cmd = sb.command(&["--api-url", &fake.url, "--timeout", "60s", "--from", "nagios"]);
        for (name, value) in [("NOTIFICATIONTYPE", kind), ("HOSTNAME", "web-01"), ("SERVICEDESC", "queue"), ("SERVICESTATE", state)] {
            cmd.env(format!("NAGIOS_{name}"), value);
        }
        cmd.env("NAGIOS_TIMET", timet.to_string());
        let r = run_command(cmd, b"");
        assert_eq!(r.code, Some(0), "{r:?}");
        r
    };
    notify("PROBLEM", "CRITICAL", t - 60);
    notify("RECOVERY", "OK", t);
    assert_eq!(called(&fake), vec![ONE], "the first problem: the first person answers");
    let r = notify("PROBLEM", "CRITICAL", t);
    fake.assert_no_violations();
    assert_eq!(called(&fake), vec![ONE, ONE], "the reopened incident called nobody: {}", r.stderr);
    assert_eq!(sb.state("twilio", "web-01%2Fqueue.json")["open"], true, "{}", r.stderr);
}

/// A run whose deadline runs out while a call still rings exits 75 and leaves its calls noted
/// in the record: the next event follows that call instead of ringing the phone again, and
/// when it rings out calls the next person, not the first again.
#[test]
fn sequential_out_of_time_while_a_call_rings_the_next_event_follows_that_call() {
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing]);
    let sb = sandbox(sequential(json!({"recipients": [ONE, TWO], "ring_timeout": 1})));
    // The shortest timeout sequential mode takes with a 1 s ring timeout.
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "16s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains(&format!("the call to {ONE} was still ringing")), "{}", r.stderr);
    assert_eq!(called(&fake), vec![ONE]);
    let ringing = fake.calls()[0].sid.clone();
    fake.end_call(&ringing, Outcome::NoAnswer);
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "16s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(called(&fake), vec![ONE, TWO], "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("carrying on from a run that ended mid-way (1 call placed, the last to {ONE}: call {ringing})")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&format!("call 1 to {ONE}: no-answer")), "{}", r.stderr);
    let st = sb.state("twilio", "web-01%2Fcheck_disk.json");
    assert_eq!(st["refs"]["call_sids"], json!([ringing, fake.calls()[1].sid]), "{st}");
    assert!(st.get("progress").is_none(), "the notes went with the record: {st}");
}

/// The notes of a killed run whose call was answered stand for a page only within the
/// incident's `refresh`: the same failure a refresh later pages again from the top (the run
/// reached someone then, not now), where a minute later it counts as answered.
#[test]
fn sequential_a_killed_runs_answered_call_counts_within_refresh_only() {
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing]);
    let sb = sandbox(sequential(json!({"recipients": [ONE, TWO], "refresh": 600})));
    let now = crate::util::unix_now() as u64;
    let mut cmd = sb.command(&["--api-url", &fake.url, "--timeout", "60s"]);
    cmd.env("PAGERPIPE_NOW", now.to_string());
    let mut first = crate::util::spawn_command(cmd, &read_fixture("sensu/create.json"));
    fake.wait_for("the first call ringing and followed", |calls| calls.len() == 1 && calls[0].fetches >= 1);
    first.kill().expect("SIGKILL the handler by its PID");
    let _ = first.wait();
    fake.end_call(&fake.calls()[0].sid, Outcome::Answered);
    let r = run_at(&sb, &fake, now + 600, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("older than refresh: paging afresh"), "{}", r.stderr);
    assert_eq!(called(&fake), vec![ONE, ONE], "{}", r.stderr);
    fake.assert_no_violations();
}

/// A run killed while its call rang, and that call's status can no longer be read: the next
/// event calls the next person (a page twice rather than none), and calls the first person
/// again only once the unreadable call can no longer ring (ring timeout + 15 s after it was
/// placed), never two calls to one phone at once.
#[test]
fn sequential_a_dead_runs_call_that_cannot_be_read_is_passed_over_and_its_phone_waits() {
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing, Outcome::NoAnswer, Outcome::Answered]);
    let sb = sandbox(sequential(json!({"recipients": [ONE, TWO], "ring_timeout": 1, "rounds": 2})));
    let mut first =
        crate::util::spawn_command(sb.command(&["--api-url", &fake.url, "--timeout", "60s"]), &read_fixture("sensu/create.json"));
    fake.wait_for("the first call ringing and followed", |calls| calls.len() == 1 && calls[0].fetches >= 1);
    first.kill().expect("SIGKILL the handler by its PID");
    let _ = first.wait();
    let unreadable = fake.calls()[0].sid.clone();
    fake.refuse_fetches(&unreadable);
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(called(&fake), vec![ONE, TWO, ONE], "{}", r.stderr);
    assert!(r.stderr.contains(&format!("cannot follow call 1 to {ONE}")), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("before calling {ONE}: an earlier call to that number may still ring")), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("answered by {ONE} on call 3")), "{}", r.stderr);
}

/// The numbers texted so far.
fn texted(fake: &FakeTwilio) -> Vec<String> {
    fake.to(MESSAGES).iter().map(|m| m.param("To").unwrap_or("").to_string()).collect()
}

/// A sequential run with `sms` in `channels`, killed (SIGKILL by its PID) once the fake has
/// seen the first person's text: while Twilio's answer to that text is held (`held_sms`, the
/// text of unknown fate to the handler), or once that text was answered and the first call's
/// create is held. The fake's requests say when; `now` is the run's `PAGERPIPE_NOW`.
fn kill_a_texting_run(sb: &Sandbox, fake: &FakeTwilio, now: u64, held_sms: bool) {
    let mut cmd = sb.command(&["--api-url", &fake.url, "--timeout", "60s"]);
    cmd.env("PAGERPIPE_NOW", now.to_string());
    let mut first = crate::util::spawn_command(cmd, &read_fixture("sensu/create.json"));
    let seen = |texts: usize, calls: usize| move || (fake.to(MESSAGES).len() == texts && fake.calls().len() == calls).then_some(());
    let what = if held_sms { "the first text" } else { "the first text and the first call's create" };
    crate::util::wait_until(what, std::time::Duration::from_secs(60), seen(1, usize::from(!held_sms)), || {
        format!("{:?} {:?}", texted(fake), called(fake))
    });
    first.kill().expect("SIGKILL the handler by its PID");
    let _ = first.wait();
    assert_eq!(texted(fake), vec![ONE]);
}

/// "A person gets the page's text once": a run killed after it texted the first person (the
/// text answered, or of unknown fate) but before that person's call was noted, or while the
/// call's create was in flight, is carried on by `--flush` without texting anyone again: the
/// text is noted as it goes out, with the run.
#[test]
fn sequential_a_killed_runs_text_is_not_sent_again_when_the_run_is_carried_on() {
    for held_sms in [true, false] {
        let script = if held_sms { vec![Script::AcceptThenHang] } else { vec![Script::Accept, Script::AcceptThenHang] };
        let fake = FakeTwilio::start(&script);
        fake.outcomes(&[Outcome::NoAnswer, Outcome::NoAnswer, Outcome::Answered]);
        let sb = sandbox(sequential(
            json!({"channels": ["voice", "sms"], "recipients": [ONE, {"name": "Bob", "phone": TWO}, {"name": "花子", "phone": THREE}]}),
        ));
        kill_a_texting_run(&sb, &fake, crate::util::unix_now() as u64, held_sms);
        let r = sb.run(&["--flush", "--timeout", "30s", "--api-url", &fake.url], b"");
        assert_eq!(r.code, Some(0), "held_sms {held_sms}: {r:?}");
        assert_eq!(texted(&fake), vec![ONE, TWO, THREE], "held_sms {held_sms}: each person texted once: {}", r.stderr);
        assert_eq!(called(&fake), vec![ONE, TWO, THREE], "held_sms {held_sms}: nobody called twice: {}", r.stderr);
        assert!(r.stderr.contains("carrying on from a run that ended mid-way"), "{}", r.stderr);
        assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["refs"]["answered"]["phone"], THREE);
        fake.assert_no_violations();
    }
}

/// The notes of a text belong to the run it was sent in: the same failure a `refresh` after a
/// killed run that texted the first person pages afresh, and texts that person again.
#[test]
fn sequential_a_killed_runs_text_does_not_hold_back_the_texts_of_a_run_a_refresh_later() {
    let fake = FakeTwilio::start(&[Script::AcceptThenHang]);
    fake.outcomes(&[Outcome::Answered]);
    let sb = sandbox(sequential(json!({"channels": ["voice", "sms"], "refresh": 600})));
    let now = crate::util::unix_now() as u64;
    kill_a_texting_run(&sb, &fake, now, true);
    let r = run_at(&sb, &fake, now + 600, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("older than refresh: paging afresh"), "{}", r.stderr);
    assert_eq!(texted(&fake), vec![ONE, ONE], "{}", r.stderr);
    assert_eq!(called(&fake), vec![ONE], "{}", r.stderr);
    fake.assert_no_violations();
}
/// Every recipient over a call cap in sequential mode: the page is texted to each instead. A
/// run killed (SIGKILL by its PID) while Twilio's answer to the `held`-th of those texts is held
/// (a text of unknown fate, counted as sent, as a sequential run's own texts are) is carried
/// on by `--flush`: the people texted or being texted are not texted again, and the others
/// are. Before, the run's notes were cleared before the texts went out, and the flush texted
/// everyone again from the top.
#[test]
fn sequential_a_killed_runs_texts_over_the_call_cap_are_not_sent_again_when_the_run_is_carried_on() {
    for held in 1..=3 {
        let mut script = vec![Script::Accept; held - 1];
        script.push(Script::AcceptThenHang);
        let fake = FakeTwilio::start(&script);
        let sb = sandbox(sequential(json!({"recipients": [ONE, {"name": "Bob", "phone": TWO}, {"name": "花子", "phone": THREE}],
            "call_caps": {"15m": 1}})));
        let now = crate::util::unix_now() as u64;
        // Each number was called a minute ago (by another incident): every call is over the cap.
        let caps = json!({"calls": {ONE: [now - 60], TWO: [now - 60], THREE: [now - 60]}});
        std::fs::write(sb.state_file("twilio", "recipients%3Acalls.json"), caps.to_string()).unwrap();
        let mut cmd = sb.command(&["--api-url", &fake.url, "--timeout", "60s"]);
        cmd.env("PAGERPIPE_NOW", now.to_string());
        let mut first = crate::util::spawn_command(cmd, &read_fixture("sensu/create.json"));
        let seen = || (fake.to(MESSAGES).len() == held && fake.script_left() == 0).then_some(());
        crate::util::wait_until("the held text", std::time::Duration::from_secs(60), seen, || format!("{:?}", texted(&fake)));
        first.kill().expect("SIGKILL the handler by its PID");
        let _ = first.wait();
        assert_eq!(texted(&fake), [ONE, TWO, THREE][..held].to_vec(), "held {held}");
        let r = sb.run(&["--flush", "--timeout", "30s", "--api-url", &fake.url], b"");
        assert_eq!(r.code, Some(0), "held {held}: {r:?}");
        assert_eq!(texted(&fake), vec![ONE, TWO, THREE], "held {held}: each person texted once: {}", r.stderr);
        assert!(called(&fake).is_empty(), "held {held}: {}", r.stderr);
        assert!(r.stderr.contains("carrying on from a run that ended mid-way"), "held {held}: {}", r.stderr);
        assert!(r.stderr.contains("every recipient is over the call cap"), "held {held}: {}", r.stderr);
        let rec = sb.state("twilio", "web-01%2Fcheck_disk.json");
        assert_eq!(rec["last_action"], "trigger", "held {held}: the page is recorded: {rec}");
        fake.assert_no_violations();
    }
}

/// Sequential mode with only some people over a call cap and no `sms` in `channels`: the one
/// over the cap is texted at their turn instead of called (docs/twilio.md "Call caps"), once
/// per run, and the others are called in order. Before, they were passed over without a text,
/// and the page never reached them.
#[test]
fn sequential_a_person_over_the_call_cap_is_texted_at_their_turn() {
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::NoAnswer, Outcome::NoAnswer, Outcome::NoAnswer, Outcome::NoAnswer]);
    let sb = sandbox(sequential(json!({"recipients": [ONE, {"name": "Bob", "phone": TWO}, {"name": "花子", "phone": THREE}],
        "call_caps": {"15m": 2}, "rounds": 2})));
    let now = crate::util::unix_now() as u64;
    // ONE was called twice a minute ago (by another incident): over the cap; Bob and 花子 are not.
    let caps = json!({"calls": {ONE: [now - 70, now - 60]}});
    std::fs::write(sb.state_file("twilio", "recipients%3Acalls.json"), caps.to_string()).unwrap();
    let r = run_at(&sb, &fake, now, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
    assert!(r.stderr.contains(&format!("not calling {ONE}")), "{}", r.stderr);
    assert_eq!(texted(&fake), vec![ONE], "texted once, at the first turn: {}", r.stderr);
    assert_eq!(called(&fake), vec![TWO, THREE, TWO, THREE], "{}", r.stderr);
    assert_eq!(r.code, Some(75), "nobody answered: {r:?}");
    fake.assert_no_violations();
}

/// Sequential settings for the spool tests: two people, 1 s rings (so that an event's run may
/// take the shortest `--timeout`, 16 s), no call caps.
fn spooled_sequential() -> Sandbox {
    sandbox(sequential(json!({"recipients": [ONE, {"name": "Bob", "phone": TWO}], "ring_timeout": 1, "call_caps": {}})))
}

/// `--state-store` naming a Redis nothing listens on: no usable ledger.
const NO_LEDGER: [&str; 2] = ["--state-store", "redis://127.0.0.1:1/0"];

/// [`spooled_sequential`]'s sandbox with a sequential run spooled without a usable ledger
/// ([`NO_LEDGER`]) while Twilio refuses connections (exit 75).
fn run_spooled_without_a_ledger() -> Sandbox {
    let sb = spooled_sequential();
    let r = sb.run(&[&["--api-url", REFUSED_URL, "--timeout", "16s"][..], &NO_LEDGER].concat(), &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("spooled as"), "{}", r.stderr);
    sb
}

/// A sequential event while Twilio refuses connections: the run cannot place a call, and is
/// spooled whole (exit 75), its entry the only one.
fn spool_a_sequential_run(sb: &Sandbox, event: &[u8]) {
    let r = sb.run(&["--api-url", REFUSED_URL, "--timeout", "16s"], event);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("Twilio cannot be reached in sequential mode"), "{}", r.stderr);
    assert!(r.stderr.contains("spooled as"), "{}", r.stderr);
    assert!(!r.stderr.contains("undelivered event, not spooled"), "{}", r.stderr);
    let (_, entry) = sb.spooled_entry("twilio", &r.stderr);
    assert_eq!(entry["action"], "trigger", "{entry}");
    assert!(entry["payload"]["twiml"].as_str().is_some_and(|t| t.contains(" is critical.")), "{entry}");
}

#[test]
fn a_sequential_run_that_cannot_reach_twilio_is_spooled_and_flush_calls_in_order_until_someone_answers() {
    let sb = spooled_sequential();
    spool_a_sequential_run(&sb, &read_fixture("sensu/create.json"));
    // Twilio is back: the flush runs the sequence, the first person does not answer, Bob does.
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::NoAnswer, Outcome::Answered]);
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(called(&fake), vec![ONE, TWO], "{}", r.stderr);
    assert!(fake.overlaps().is_empty(), "{:?}", fake.overlaps());
    assert!(r.stderr.contains(&format!("call 2 to Bob {TWO}: completed after 12 s")), "{}", r.stderr);
    assert!(r.stderr.contains("1 delivered, 0 moved to failed/, 0 still queued"), "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty());
    let st = sb.state("twilio", "web-01%2Fcheck_disk.json");
    assert_eq!(st["open"], true, "{st}");
    assert_eq!(st["last_action"], "trigger", "{st}");
    let sids: Vec<String> = fake.calls().iter().map(|c| c.sid.clone()).collect();
    assert_eq!(st["refs"]["call_sids"], json!(sids), "{st}");
    assert_eq!(st["refs"]["answered"]["phone"], TWO, "{st}");
    assert!(st.get("progress").is_none(), "the run is over: {st}");
    // The same failure again is a repeat of the page the flush delivered.
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "16s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("already notified"), "{}", r.stderr);
    assert_eq!(fake.calls().len(), 2);
}

#[test]
fn a_spooled_sequential_run_is_dropped_as_superseded_when_a_resolve_is_delivered_meanwhile() {
    let sb = spooled_sequential();
    let t = crate::util::unix_now();
    spool_a_sequential_run(&sb, &fixture_at("sensu/create.json", t - 3));
    // Another host sharing the ledger handles the recovery (nothing to send without
    // notify_on_resolve; it is recorded).
    let fake = FakeTwilio::start(&[]);
    let r = run_command(sb.command_on_host("b", &["--api-url", &fake.url, "--timeout", "16s"]), &fixture_at("sensu/resolve.json", t - 1));
    assert_eq!(r.code, Some(0), "{r:?}");
    // This host's flush, Twilio up: the run is stale, nobody is called.
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(fake.to(CALLS).is_empty(), "called for a recovered incident: {}", r.stderr);
    assert!(r.stderr.contains("0 delivered, 1 moved to failed/, 0 still queued"), "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty());
    let failed = sb.failed("twilio");
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["failure"].as_str().is_some_and(|f| f.contains("superseded")), "{}", failed[0]);
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["open"], false);
}

#[test]
fn a_resolve_handled_here_drops_the_spooled_sequential_run_before_it_calls_anyone() {
    let sb = spooled_sequential();
    let t = crate::util::unix_now();
    spool_a_sequential_run(&sb, &fixture_at("sensu/create.json", t - 3));
    // Twilio is back when the recovery comes to this host: the incident's spooled run goes
    // before its resolve in the log, but it is stale, so it calls nobody.
    let fake = FakeTwilio::start(&[]);
    let r = run(&sb, &fake, &fixture_at("sensu/resolve.json", t - 1), &["--timeout", "16s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("superseded: a resolve of a later event is being handled"), "{}", r.stderr);
    assert!(fake.to(CALLS).is_empty(), "called for a recovered incident: {}", r.stderr);
    assert!(sb.spooled("twilio").is_empty());
    assert_eq!(sb.failed("twilio").len(), 1);
    let st = sb.state("twilio", "web-01%2Fcheck_disk.json");
    assert_eq!(st["open"], false, "{st}");
    assert!(st.get("progress").is_none(), "{st}");
}

/// The same when the failure gave no time (a Sensu 1.x result without `check.executed`: its
/// run is ordered by its receipt) and the recovery's check ran 10 s before that receipt: which
/// came first cannot be told, and the recovery is applied (`state::applied_after`); a run in
/// progress elsewhere is stopped by it (`state::stop_requested`). The spooled run is likewise
/// dropped before it calls anyone.
#[test]
fn a_resolve_handled_here_drops_the_spooled_run_of_an_untimed_failure_received_before_it() {
    let sb = spooled_sequential();
    let t = crate::util::unix_now();
    let mut untimed: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    untimed["check"].as_object_mut().unwrap().remove("executed");
    untimed.as_object_mut().unwrap().remove("timestamp");
    let mut cmd = sb.command(&["--api-url", REFUSED_URL, "--timeout", "16s"]);
    cmd.env("PAGERPIPE_NOW", t.to_string());
    let r = run_command(cmd, untimed.to_string().as_bytes());
    assert_eq!(r.code, Some(75), "{r:?}");
    let fake = FakeTwilio::start(&[]);
    let mut cmd = sb.command(&["--api-url", &fake.url, "--timeout", "16s"]);
    cmd.env("PAGERPIPE_NOW", (t + 5).to_string());
    let r = run_command(cmd, &fixture_at("sensu/resolve.json", t - 10));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(fake.to(CALLS).is_empty(), "called for a recovered incident: {}", r.stderr);
    assert!(r.stderr.contains("superseded: a resolve of a later event is being handled"), "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty());
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["open"], false);
}

#[test]
fn a_flush_out_of_time_mid_run_leaves_the_run_queued_and_the_next_flush_carries_on_ringing_nobody_twice() {
    let sb = spooled_sequential();
    spool_a_sequential_run(&sb, &read_fixture("sensu/create.json"));
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing]);
    // A flush too short to see the first call end: it stays queued, its call noted.
    let r = sb.run(&["--flush", "--timeout", "2s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains(&format!("the call to {ONE} was still ringing")), "{}", r.stderr);
    assert!(r.stderr.contains("0 delivered, 0 moved to failed/, 1 still queued"), "{}", r.stderr);
    assert_eq!(called(&fake), vec![ONE]);
    assert_eq!(sb.spooled("twilio").len(), 1);
    let ringing = fake.calls()[0].sid.clone();
    let st = sb.state("twilio", "web-01%2Fcheck_disk.json");
    assert_eq!(st["progress"]["notes"]["calls"][0]["sid"], json!(ringing), "{st}");
    // The call rings out; the next flush follows it and calls Bob, not the first person again.
    fake.end_call(&ringing, Outcome::NoAnswer);
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(called(&fake), vec![ONE, TWO], "{}", r.stderr);
    assert!(fake.overlaps().is_empty(), "{:?}", fake.overlaps());
    assert!(
        r.stderr.contains(&format!("carrying on from a run that ended mid-way (1 call placed, the last to {ONE}: call {ringing})")),
        "{}",
        r.stderr
    );
    assert!(sb.spooled("twilio").is_empty());
    let st = sb.state("twilio", "web-01%2Fcheck_disk.json");
    assert_eq!(st["refs"]["answered"]["phone"], TWO, "{st}");
}

/// A call whose status cannot be read is passed over, and its number is not called again
/// while that call may still ring (`ring_timeout` + 15 s): across short flushes too. Before,
/// only the run that passed it over held the number: the next flush, carrying the run on from
/// its notes, called that person again in the next round while their phone still rang.
#[test]
fn a_call_whose_status_cannot_be_read_holds_its_number_across_short_flushes() {
    let sb = spooled_sequential();
    spool_a_sequential_run(&sb, &read_fixture("sensu/create.json"));
    // Rings of a minute from now on: a call may ring for 75 s.
    let two = json!({"recipients": [ONE, {"name": "Bob", "phone": TWO}], "ring_timeout": 60, "call_caps": {}});
    sb.config("twilio.json", &json!({"twilio": crate::util::twilio_settings(sequential(two))}));
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing, Outcome::Ringing]);
    // The first call's status cannot be read (404).
    fake.refuse_fetches("CA00000000000000000000000000000001");
    let r = sb.run(&["--flush", "--timeout", "6s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(called(&fake), vec![ONE, TWO], "{}", r.stderr);
    assert!(r.stderr.contains(&format!("cannot follow call 1 to {ONE}")), "{}", r.stderr);
    // Bob's phone rings out; the next flush follows that call, and the second round would
    // start with the first person, whose call may still ring.
    fake.end_call(&fake.calls()[1].sid, Outcome::NoAnswer);
    let r = sb.run(&["--flush", "--timeout", "6s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(called(&fake), vec![ONE, TWO], "the first person's phone may still ring: {}", r.stderr);
    assert!(r.stderr.contains(&format!("before calling {ONE}: an earlier call to that number may still ring")), "{}", r.stderr);
    assert_eq!(sb.spooled("twilio").len(), 1, "the run stays queued");
    fake.assert_no_violations();
}

/// A number listed twice (the first person called again after the second, as a last resort)
/// is called where the list says, also by a run carried on from the notes of one that ended
/// while its second call rang. Before, the run carrying it on took the last call for one to
/// the first place the number has in the list, and called the people after it again.
#[test]
fn a_run_carried_on_after_the_second_listing_of_a_number_calls_nobody_again() {
    let sb = spooled_sequential();
    spool_a_sequential_run(&sb, &read_fixture("sensu/create.json"));
    let again = json!({"recipients": [ONE, {"name": "Bob", "phone": TWO}, ONE], "rounds": 1, "ring_timeout": 1, "call_caps": {}});
    sb.config("twilio.json", &json!({"twilio": crate::util::twilio_settings(sequential(again))}));
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::NoAnswer, Outcome::NoAnswer, Outcome::Ringing]);
    let r = sb.run(&["--flush", "--timeout", "4s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(called(&fake), vec![ONE, TWO, ONE], "{}", r.stderr);
    // The third call rings out; the next flush follows it, and the one round is over.
    fake.end_call(&fake.calls()[2].sid, Outcome::NoAnswer);
    let r = sb.run(&["--flush", "--timeout", "4s", "--api-url", &fake.url], b"");
    assert_eq!(called(&fake), vec![ONE, TWO, ONE], "nobody is called twice in the round: {}", r.stderr);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("nobody answered"), "{}", r.stderr);
    fake.assert_no_violations();
}

/// Without a usable ledger (Redis refusing connections) the run's progress notes live in its
/// spool entry: each short flush follows the call the one before placed instead of calling
/// the first person again while their phone still rings.
#[test]
fn without_a_ledger_short_flushes_follow_the_ringing_call_from_the_spool_entry_and_ring_nobody_twice() {
    let (sb, no_ledger) = (run_spooled_without_a_ledger(), NO_LEDGER);
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing]);
    for _ in 0..3 {
        let r = sb.run(&[&["--flush", "--timeout", "2s", "--api-url", &fake.url][..], &no_ledger].concat(), b"");
        assert_eq!(r.code, Some(75), "{r:?}");
        assert!(r.stderr.contains("1 still queued"), "{}", r.stderr);
        assert_eq!(called(&fake), vec![ONE], "{}", r.stderr);
    }
    assert!(fake.overlaps().is_empty(), "{:?}", fake.overlaps());
    let ringing = fake.calls()[0].sid.clone();
    let (_, entry) = sb.spooled_entry("twilio", "");
    assert_eq!(entry["progress"]["notes"]["calls"][0]["sid"], json!(ringing), "{entry}");
    // It rings out; the next flush follows it from the entry and calls Bob, who answers.
    fake.end_call(&ringing, Outcome::NoAnswer);
    let r = sb.run(&[&["--flush", "--timeout", "10s", "--api-url", &fake.url][..], &no_ledger].concat(), b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    assert_eq!(called(&fake), vec![ONE, TWO], "{}", r.stderr);
    assert!(fake.overlaps().is_empty(), "{:?}", fake.overlaps());
    assert!(r.stderr.contains(&format!("the last to {ONE}: call {ringing})")), "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty());
}

/// An event's run that ran out of time while its call rang, without a ledger: its spool entry
/// keeps the call, and the flush follows it rather than call the first person again.
#[test]
fn without_a_ledger_an_events_run_out_of_time_keeps_its_ringing_call_in_the_spool_entry_for_the_flush() {
    let (sb, no_ledger) = (spooled_sequential(), NO_LEDGER);
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing]);
    let r = sb.run(&[&["--api-url", &fake.url, "--timeout", "16s"][..], &no_ledger].concat(), &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains(&format!("the call to {ONE} was still ringing")), "{}", r.stderr);
    let ringing = fake.calls()[0].sid.clone();
    let (_, entry) = sb.spooled_entry("twilio", &r.stderr);
    assert_eq!(entry["progress"]["notes"]["calls"][0]["sid"], json!(ringing), "{entry}");
    let r = sb.run(&[&["--flush", "--timeout", "2s", "--api-url", &fake.url][..], &no_ledger].concat(), b"");
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(called(&fake), vec![ONE], "{}", r.stderr);
    fake.end_call(&ringing, Outcome::Busy);
    let r = sb.run(&[&["--flush", "--timeout", "10s", "--api-url", &fake.url][..], &no_ledger].concat(), b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(called(&fake), vec![ONE, TWO], "{}", r.stderr);
    assert!(fake.overlaps().is_empty(), "{:?}", fake.overlaps());
}

/// On a full disk neither the ledger nor the spool entry can note a call: a flush whose share
/// cannot follow a call to its end places none (the next flush could not know of it, and would
/// ring the same phone again), and says what would carry the run on; one with time enough calls.
#[test]
fn a_flush_that_can_note_a_call_nowhere_places_one_only_when_it_can_follow_it_to_its_end() {
    let sb = spooled_sequential();
    spool_a_sequential_run(&sb, &read_fixture("sensu/create.json"));
    let fake = FakeTwilio::start(&[]);
    let flush = |timeout: &str| {
        run_command(crate::util::on_a_full_disk(&sb.command(&["--flush", "--timeout", timeout, "--api-url", &fake.url])), b"")
    };
    let r = flush("2s");
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(fake.to(CALLS).is_empty(), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("the call to {ONE} can be noted neither in the ledger nor in the run's spool entry")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("a --flush with a --timeout of at least"), "{}", r.stderr);
    assert_eq!(sb.spooled("twilio").len(), 1);
    // A flush whose share can follow the call to its end calls; the first person answers.
    let r = flush("40s");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(called(&fake), vec![ONE], "{}", r.stderr);
    assert!(r.stderr.contains(&format!("answered by {ONE} on call 1")), "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty(), "{}", r.stderr);
}

#[test]
fn a_sequential_run_twilio_answers_500_is_spooled_and_waits_while_twilio_still_fails() {
    let sb = spooled_sequential();
    let failing = FakeTwilio::start(&[Script::ServerError; 200]);
    let r = sb.run(&["--api-url", &failing.url, "--timeout", "16s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("Twilio cannot be reached in sequential mode (HTTP 500"), "{}", r.stderr);
    assert_eq!(sb.spooled("twilio").len(), 1, "{}", r.stderr);
    // Still failing at the flush: the run stays queued, nobody was called.
    let r = sb.run(&["--flush", "--timeout", "2s", "--api-url", &failing.url], b"");
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("0 delivered, 0 moved to failed/, 1 still queued"), "{}", r.stderr);
    assert!(failing.calls().is_empty());
    let (_, entry) = sb.spooled_entry("twilio", &r.stderr);
    assert_eq!(entry["attempts"], 1, "{entry}");
    // Back: the first person answers.
    let fake = FakeTwilio::start(&[]);
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(called(&fake), vec![ONE]);
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["refs"]["answered"]["phone"], ONE);
}

/// The choice for a spooled run that reaches nobody: it was carried out in full, as an
/// event's run that called everyone without an answer is, so it is over — moved to `failed/`
/// with the reason, nothing recorded — and the next event for the incident calls again from
/// the top (a flush does not ring everyone again every minute).
#[test]
fn a_spooled_sequential_run_nobody_answers_is_over_moved_to_failed_and_the_next_event_calls_again() {
    let sb = spooled_sequential();
    spool_a_sequential_run(&sb, &read_fixture("sensu/create.json"));
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::NoAnswer, Outcome::Busy, Outcome::NoAnswer, Outcome::NoAnswer]);
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "nothing is left to retry: {r:?}");
    assert_eq!(called(&fake), vec![ONE, TWO, ONE, TWO], "{}", r.stderr);
    assert!(r.stderr.contains("twilio: error: spool: trigger web-01/check_disk: spooled trigger"), "{}", r.stderr);
    assert!(r.stderr.contains("nobody answered calls"), "{}", r.stderr);
    assert!(r.stderr.contains("0 delivered, 1 moved to failed/, 0 still queued"), "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty());
    let failed = sb.failed("twilio");
    assert!(failed[0]["failure"].as_str().is_some_and(|f| f.contains("nobody answered")), "{}", failed[0]);
    assert!(!sb.state_file("twilio", "web-01%2Fcheck_disk.json").exists(), "nothing recorded");
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!((r.code, fake.calls().len()), (Some(0), 4), "{r:?}");
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "16s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(called(&fake), vec![ONE, TWO, ONE, TWO, ONE], "{}", r.stderr);
}

/// A run that cannot reach Twilio for this machine's configuration (an untrusted certificate)
/// still exits 78, but is kept, as a broadcast call is: the flush after the fix runs it.
#[test]
fn a_sequential_run_refused_for_an_untrusted_certificate_is_kept_and_flushed_once_ca_file_is_fixed() {
    let fake = FakeTwilio::start(&[]);
    let pki = crate::fake::tls::Pki::new(&["127.0.0.1"]);
    let front = crate::fake::tls::TlsFront::start(&fake.url, &pki);
    let sb = spooled_sequential();
    let r = sb.run(&["--api-url", &front.url, "--timeout", "16s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("not signed by a trusted CA") && r.stderr.contains("spooled as"), "{}", r.stderr);
    assert_eq!(sb.spooled("twilio").len(), 1, "{}", r.stderr);
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &front.url], b"");
    assert_eq!(r.code, Some(78), "still untrusted: kept: {r:?}");
    assert_eq!(sb.spooled("twilio").len(), 1, "{}", r.stderr);
    let ca = pki.write_ca(sb.dir.path(), "ca.pem");
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &front.url, "--ca-file", ca.to_str().unwrap()], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(called(&fake), vec![ONE], "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty());
    fake.assert_no_violations();
}

/// The same failure again while Twilio is still down first tries the spooled run, then is a
/// repeat of it (a spooled trigger is not queued twice, nor run alongside): one page.
#[test]
fn a_repeat_while_a_sequential_run_is_spooled_is_a_repeat_of_it_and_pages_nobody_again() {
    let sb = spooled_sequential();
    spool_a_sequential_run(&sb, &read_fixture("sensu/create.json"));
    let r = sb.run(&["--api-url", REFUSED_URL, "--timeout", "16s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("spool: 1 request(s) for web-01/check_disk still queued (Twilio cannot be reached"), "{}", r.stderr);
    assert!(r.stderr.contains("skipped web-01/check_disk: already notified"), "{}", r.stderr);
    assert_eq!(sb.spooled("twilio").len(), 1, "{}", r.stderr);
    let fake = FakeTwilio::start(&[]);
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(called(&fake), vec![ONE], "{}", r.stderr);
    assert!(r.stderr.contains("1 delivered, 0 moved to failed/, 0 still queued"), "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty());
}

/// An event that finds another invocation's run still calling for its incident when its wait
/// ends queues its own run in the spool instead of calling alongside (or following the same
/// call from the same notes); once the first run reached someone, the flush drops it as a
/// repeat.
#[test]
fn an_event_that_finds_a_run_still_calling_queues_its_run_behind_it() {
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing]);
    let sb = spooled_sequential();
    let first = crate::util::spawn_command(sb.command(&["--api-url", &fake.url, "--timeout", "60s"]), &read_fixture("sensu/create.json"));
    fake.wait_for("the first call ringing and followed", |calls| calls.len() == 1 && calls[0].fetches >= 1);
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "16s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("another invocation is still delivering for this incident; queued behind it; spooled as"), "{}", r.stderr);
    assert_eq!(sb.spooled("twilio").len(), 1, "{}", r.stderr);
    assert_eq!(called(&fake), vec![ONE], "nobody called alongside the run: {}", r.stderr);
    fake.end_call(&fake.calls()[0].sid, Outcome::Answered);
    let out = crate::util::finish(first);
    assert_eq!(out.code, Some(0), "{out:?}");
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("already notified"), "{}", r.stderr);
    assert!(r.stderr.contains("0 delivered, 1 moved to failed/, 0 still queued"), "{}", r.stderr);
    assert_eq!(called(&fake), vec![ONE]);
    fake.assert_no_violations();
}

/// Creates that reach Twilio but are never answered leave calls of unknown fate: the spooled
/// run's flush looks the last one up with ListCall before calling that person, and calls them
/// only when Twilio has no such call; nobody is called twice.
#[test]
fn a_spooled_run_whose_last_call_is_of_unknown_fate_looks_it_up_before_calling_again() {
    let sb = spooled_sequential();
    // The first create is placed but never answered (unknown fate: the run calls the next);
    // the second is lost on the way and never answered either, until the deadline.
    let fake = FakeTwilio::start(&[Script::AcceptThenHang, Script::Hang]);
    let r = sb.run(&["--api-url", &fake.url, "--timeout", "16s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains(&format!("call to {ONE}: ")) && r.stderr.contains("its fate is unknown, calling the next"), "{}", r.stderr);
    assert_eq!(sb.spooled("twilio").len(), 1, "{}", r.stderr);
    assert_eq!(called(&fake), vec![ONE], "only the first create was placed");
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains(&format!("ListCall has no call to Bob {TWO} since it was being placed: calling them now")), "{}", r.stderr);
    let looked_up: Vec<String> =
        fake.lists().iter().flat_map(|q| q.iter().filter(|(k, _)| k == "To").map(|(_, v)| v.clone()).collect::<Vec<_>>()).collect();
    assert_eq!(looked_up, vec![TWO, TWO], "the calls queued, then those started: {}", r.stderr);
    assert_eq!(called(&fake), vec![ONE, TWO], "{}", r.stderr);
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["refs"]["answered"]["phone"], TWO);
    fake.assert_no_violations();
}

/// Twilio queues calls beyond the account's calls per second (1 by default: a broadcast, or a
/// storm of pages) and dials them later; until then a call has no `start_time` ("Empty if the
/// call has not yet been dialed", the Call resource in the spec), so ListCall's `StartTime>`
/// ("calls that started on or after this date") leaves it out. A call of unknown fate still
/// waiting in Twilio's queue when the flush looks it up is found all the same (ListCall
/// `Status=queued`), not placed a second time; and one dialled by then is found as before.
#[test]
fn a_call_of_unknown_fate_still_in_twilios_queue_is_found_not_placed_twice() {
    for dialled in [false, true] {
        let fake = FakeTwilio::start(&[Script::AcceptThenHang]);
        let sb = twilio_sandbox(json!({"recipients": [ONE]}));
        let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "2s"]);
        assert_eq!(r.code, Some(75), "{r:?}");
        assert_eq!(fake.calls().len(), 1);
        if dialled {
            fake.dial_queued();
        }
        assert_eq!(fake.calls()[0].status(), if dialled { "ringing" } else { "queued" });
        let f = run(&sb, &fake, b"", &["--flush", "--timeout", "10s"]);
        assert_eq!(f.code, Some(0), "{f:?}");
        fake.assert_no_violations();
        assert_eq!(fake.calls().len(), 1, "dialled {dialled}: not placed a second time: {}", f.stderr);
        assert!(sb.spooled("twilio").is_empty(), "{}", f.stderr);
        assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["refs"]["call_sids"], json!([fake.calls()[0].sid]));
    }
}

/// A call of unknown fate whose ListCall Twilio refuses for good: 401 (20003), or 403 for an
/// API key that may place calls but not list them. Before, each flush exited 75, as if Twilio
/// were down, until spool_max_age gave the call up, and nobody was told that the credentials
/// need fixing. Now: exit 78 with one line quoting Twilio's refusal (no secret in it), asked
/// once, the call kept with its fate unknown and never placed again blind (a phone rung
/// twice); once the lookup is allowed, the flush finds the call the first create placed.
#[test]
fn a_call_whose_lookup_twilio_refuses_exits_78_and_is_kept_until_it_can_be_looked_up() {
    for status in [401, 403] {
        let fake = FakeTwilio::start(&[Script::AcceptThenHang]);
        let sb =
            twilio_sandbox(json!({"recipients": [ONE], "auth_token": null, "api_key_sid": API_KEY_SID, "api_key_secret": API_KEY_SECRET}));
        let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "2s"]);
        assert_eq!(r.code, Some(75), "{r:?}");
        assert_eq!(fake.calls().len(), 1, "Twilio placed it");
        let spooled = sb.spooled("twilio");
        assert_eq!(spooled.len(), 1, "{}", r.stderr);
        fake.refuse_lists(Some(status));
        let f = run(&sb, &fake, b"", &["--flush", "--timeout", "10s"]);
        assert_eq!(f.code, Some(78), "HTTP {status}: {f:?}");
        let line = format!(
            "the service refused its lookup (GET /2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json answered HTTP {status} Twilio error"
        );
        assert!(f.stderr.contains(&line), "{}", f.stderr);
        assert!(f.stderr.contains("kept spooled with its fate unknown, not sent again until it can be looked up"), "{}", f.stderr);
        if status == 403 {
            assert!(f.stderr.contains("the credentials in force may not list calls"), "{}", f.stderr);
        }
        assert!(!f.stderr.contains(API_KEY_SECRET), "{}", f.stderr);
        assert_eq!(fake.lists().len(), 1, "HTTP {status}: asked once, the answer will not change: {}", f.stderr);
        assert_eq!(fake.calls().len(), 1, "HTTP {status}: not placed again: {}", f.stderr);
        assert_eq!(sb.spooled("twilio"), spooled, "HTTP {status}: kept");
        assert!(sb.failed("twilio").is_empty(), "HTTP {status}");
        fake.refuse_lists(None);
        let f = run(&sb, &fake, b"", &["--flush", "--timeout", "10s"]);
        assert_eq!(f.code, Some(0), "HTTP {status}: {f:?}");
        assert!(f.stderr.contains("the service had acted on it after all; not sent again"), "{}", f.stderr);
        assert_eq!(fake.calls().len(), 1, "HTTP {status}: not placed twice: {}", f.stderr);
        assert!(sb.spooled("twilio").is_empty(), "{}", f.stderr);
        assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["refs"]["call_sids"], json!([fake.calls()[0].sid]));
        fake.assert_no_violations();
    }
}

/// A call of unknown fate whose lookup this machine's configuration keeps from going out (an
/// untrusted certificate: the same answer on every try) waits for a fix of the settings, as a
/// call not sent yet does: `--flush` exits 78 naming the certificate, not 75 as if Twilio
/// were down; the call is kept and not placed again blind.
#[test]
fn a_call_of_unknown_fate_a_flush_cannot_look_up_for_an_untrusted_certificate_exits_78() {
    let fake = FakeTwilio::start(&[Script::AcceptThenHang]);
    let sb = twilio_sandbox(json!({"recipients": [ONE]}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "2s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    let spooled = sb.spooled("twilio");
    assert_eq!((spooled.len(), fake.calls().len()), (1, 1), "{}", r.stderr);
    let pki = crate::fake::tls::Pki::new(&["127.0.0.1"]);
    let front = crate::fake::tls::TlsFront::start(&fake.url, &pki);
    let f = sb.run(&["--flush", "--timeout", "10s", "--api-url", &front.url], b"");
    assert!(f.stderr.contains("not signed by a trusted CA"), "{}", f.stderr);
    assert_eq!(f.code, Some(78), "{f:?}");
    assert_eq!(sb.spooled("twilio"), spooled, "kept: {}", f.stderr);
    assert_eq!(fake.calls().len(), 1, "not placed again: {}", f.stderr);
}

/// The calls the fake placed to `to`.
fn calls_to(fake: &FakeTwilio, to: &str) -> usize {
    fake.calls().iter().filter(|c| c.to == to).count()
}

/// A gateway error (500, 502, 504) can come back after Twilio placed the call. A 5xx answer to
/// a broadcast call's create is a call of unknown fate, as a create never answered is: it is
/// spooled, and the flush looks it up with ListCall before placing it again; the call that
/// was placed is found and not placed a second time, the one that was not is placed then.
/// Before, the create was sent again at once and the first person's phone rang twice.
#[test]
fn a_broadcast_call_answered_5xx_is_looked_up_before_it_is_placed_again() {
    for status in [500, 502, 504] {
        // ONE's call is placed and answered `status`; TWO's is answered 500 and not placed.
        let fake = FakeTwilio::start(&[Script::AcceptThenFail(status), Script::ServerError]);
        let sb = twilio_sandbox(json!({"recipients": [ONE, TWO]}));
        let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "10s"]);
        assert_eq!((calls_to(&fake, ONE), calls_to(&fake, TWO)), (1, 0), "HTTP {status}: nothing sent again blindly: {}", r.stderr);
        assert_eq!(r.code, Some(75), "{r:?}");
        assert!(r.stderr.contains(&format!("HTTP {status}")), "{}", r.stderr);
        assert!(r.stderr.contains("(it may have reached the service: looked up before it is sent again)"), "{}", r.stderr);
        assert_eq!(sb.spooled("twilio").len(), 2, "{}", r.stderr);
        let f = run(&sb, &fake, b"", &["--flush", "--timeout", "10s"]);
        assert_eq!(f.code, Some(0), "{f:?}");
        assert_eq!((calls_to(&fake, ONE), calls_to(&fake, TWO)), (1, 1), "HTTP {status}: {}", f.stderr);
        assert!(f.stderr.contains("the service had acted on it after all; not sent again"), "{}", f.stderr);
        assert!(sb.spooled("twilio").is_empty(), "{}", f.stderr);
        fake.assert_no_violations();
    }
}

/// A 503 is no promise that nothing was placed (the spec documents no 5xx for a create; only
/// 429 / 20429 is "always safe to retry"): with `Retry-After` too, the call is of unknown fate
/// and looked up before it is placed. A 429 is still sent again at once.
#[test]
fn a_call_answered_503_with_retry_after_is_looked_up_and_a_429_is_retried_at_once() {
    let fake = FakeTwilio::start(&[Script::Unavailable]);
    let sb = twilio_sandbox(json!({"recipients": [ONE]}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "10s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("HTTP 503") && r.stderr.contains("looked up before it is sent again"), "{}", r.stderr);
    assert!(fake.calls().is_empty());
    let f = run(&sb, &fake, b"", &["--flush", "--timeout", "10s"]);
    assert_eq!(f.code, Some(0), "{f:?}");
    assert_eq!(called(&fake), vec![ONE], "{}", f.stderr);
    assert_eq!(fake.lists().len(), 2, "looked up first (the calls queued, then those started): {}", f.stderr);

    let fake = FakeTwilio::start(&[Script::RateLimited]);
    let sb = twilio_sandbox(json!({"recipients": [ONE]}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "10s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(called(&fake), vec![ONE]);
    assert!(fake.lists().is_empty(), "no lookup for a 429: {}", r.stderr);
    fake.assert_no_violations();
}

/// A spooled broadcast call whose create the flush sends is answered 502 after Twilio placed
/// it: kept as of unknown fate, and the next flush finds it with ListCall instead of placing
/// it again. Before, the flush sent it again at once: the phone rang twice.
#[test]
fn a_spooled_call_answered_502_at_the_flush_is_looked_up_not_placed_twice() {
    let sb = twilio_sandbox(json!({"recipients": [ONE]}));
    let r = sb.run(&["--api-url", REFUSED_URL, "--timeout", "3s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    let fake = FakeTwilio::start(&[Script::AcceptThenFail(502)]);
    let f = run(&sb, &fake, b"", &["--flush", "--timeout", "10s"]);
    assert_eq!(called(&fake), vec![ONE], "placed once: {}", f.stderr);
    assert_eq!(f.code, Some(75), "{f:?}");
    assert_eq!(sb.spooled("twilio").len(), 1, "{}", f.stderr);
    let f = run(&sb, &fake, b"", &["--flush", "--timeout", "10s"]);
    assert_eq!(f.code, Some(0), "{f:?}");
    assert_eq!(called(&fake), vec![ONE], "found, not placed again: {}", f.stderr);
    assert!(f.stderr.contains("the service had acted on it after all; not sent again"), "{}", f.stderr);
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["refs"]["call_sids"], json!([fake.calls()[0].sid]));
    fake.assert_no_violations();
}

/// In sequential mode a 5xx answer to a call's create is looked up with ListCall at once: the
/// call Twilio placed anyway is followed as any call (answered: the run is over; not answered:
/// the next person), and a call that was not placed is placed now. Before, the create was sent
/// again at once: the person's phone rang twice, and the run followed only the second call.
#[test]
fn a_sequential_call_answered_502_is_looked_up_and_followed_not_placed_twice() {
    let seq = || sandbox(sequential(json!({"recipients": [ONE, {"name": "Bob", "phone": TWO}]})));
    // Placed and answered by the person.
    let fake = FakeTwilio::start(&[Script::AcceptThenFail(502)]);
    let sb = seq();
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
    assert_eq!(called(&fake), vec![ONE], "{}", r.stderr);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains(&format!("ListCall has the call to {ONE}")), "{}", r.stderr);
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["refs"]["answered"]["phone"], ONE);
    fake.assert_no_violations();
    // Placed and not answered: the next person is called (once each).
    let fake = FakeTwilio::start(&[Script::AcceptThenFail(504)]);
    fake.outcomes(&[Outcome::NoAnswer]);
    let sb = seq();
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
    assert_eq!(called(&fake), vec![ONE, TWO], "{}", r.stderr);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains(&format!("call 1 to {ONE}: no-answer")), "{}", r.stderr);
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["refs"]["answered"]["phone"], TWO);
    fake.assert_no_violations();
    // Not placed: ListCall has no call, so that person is called now.
    let fake = FakeTwilio::start(&[Script::ServerError]);
    let sb = seq();
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
    assert_eq!(called(&fake), vec![ONE], "{}", r.stderr);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains(&format!("ListCall has no call to {ONE}")), "{}", r.stderr);
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["refs"]["answered"]["phone"], ONE);
    fake.assert_no_violations();
}

/// Sequential settings for the calls of unknown fate below: `ONE`, then Bob `TWO`, a 1 s ring
/// timeout (so `--timeout 16s`, whose create attempts wait 8 s for an answer).
fn passing_over() -> Sandbox {
    sandbox(sequential(json!({"recipients": [ONE, {"name": "Bob", "phone": TWO}], "ring_timeout": 1})))
}

/// Start a sequential run whose first call, to `ONE`, Twilio places but never answers (a call
/// of unknown fate: the run passes `ONE` over and calls Bob), both calls ringing until
/// cancelled; the run once Bob's call rings and is followed.
fn pass_over_a_call_of_unknown_fate(sb: &Sandbox, fake: &FakeTwilio) -> std::process::Child {
    fake.outcomes(&[Outcome::Ringing, Outcome::Ringing]);
    let calling = crate::util::spawn_command(sb.command(&["--api-url", &fake.url, "--timeout", "16s"]), &read_fixture("sensu/create.json"));
    fake.wait_for("Bob's call ringing and followed", |calls| calls.len() == 2 && calls[1].fetches >= 1);
    assert_eq!(called(fake), vec![ONE, TWO]);
    calling
}

/// Both calls were cancelled (`Status=canceled`, once each), and no other update was made:
/// after the recovery, no phone of the incident rings.
fn assert_both_cancelled(fake: &FakeTwilio, log: &str) {
    let calls = fake.calls();
    assert!(calls.iter().all(|c| c.canceled), "a call rings on after the recovery: {calls:#?}\n{log}");
    let mut updates = fake.updates();
    updates.sort();
    let canceled = |c: &crate::fake::twilio::Call| (c.sid.clone(), vec![("Status".to_string(), "canceled".to_string())]);
    assert_eq!(updates, vec![canceled(&calls[0]), canceled(&calls[1])], "{log}");
    fake.assert_no_violations();
}

/// A call whose create Twilio took but never answered is of unknown fate: the run passes that
/// person over and calls the next. A resolve that stops the run while it follows the next
/// call has the run look the first one up (ListCall) and cancel it while it is queued or
/// ringing, as it cancels the call it follows: after the recovery no phone of the incident
/// rings. Before, only the followed call was cancelled, and the first person's phone rang on.
/// Found by the chaos soak (repro_seq_unknown_call_not_cancelled).
#[test]
fn a_resolve_that_stops_a_sequential_run_cancels_the_call_of_unknown_fate_it_passed_over() {
    let fake = FakeTwilio::start(&[Script::AcceptThenHang]);
    let sb = passing_over();
    let calling = pass_over_a_call_of_unknown_fate(&sb, &fake);
    let resolve = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &["--timeout", "16s"]);
    assert_eq!(resolve.code, Some(0), "{resolve:?}");
    let r = crate::util::finish(calling);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains(&format!("call to {ONE}: ")) && r.stderr.contains("its fate is unknown, calling the next"), "{}", r.stderr);
    assert!(r.stderr.contains("stopped: web-01/check_disk was resolved meanwhile"), "{}", r.stderr);
    let calls = fake.calls();
    assert!(r.stderr.contains(&format!("cancelled the ringing call {} to {ONE}", calls[0].sid)), "{}", r.stderr);
    assert!(fake.lists().iter().any(|q| q.contains(&("To".to_string(), ONE.to_string()))), "looked up: {}", r.stderr);
    assert_both_cancelled(&fake, &r.stderr);
    // Its SID is the incident's now, the call it was looked up for.
    let st = sb.state("twilio", "web-01%2Fcheck_disk.json");
    assert_eq!(st["open"], false, "{st}");
    assert_eq!(st["refs"]["call_sids"], json!([calls[0].sid, calls[1].sid]), "{st}");
}

/// The same when the run that passed the call over was killed: a resolve finding its notes
/// cancels its last call and the call of unknown fate it passed over; and when the next event
/// carried the dead run on (following Bob's call), the resolve that stops that run does.
#[test]
fn a_resolve_after_a_killed_sequential_run_cancels_the_call_of_unknown_fate_it_passed_over() {
    for carried_on in [false, true] {
        let fake = FakeTwilio::start(&[Script::AcceptThenHang]);
        let sb = passing_over();
        let mut first = pass_over_a_call_of_unknown_fate(&sb, &fake);
        first.kill().expect("SIGKILL the handler by its PID");
        let _ = first.wait();
        let next = carried_on.then(|| {
            let fetched = fake.calls()[1].fetches;
            let cmd = sb.command(&["--api-url", &fake.url, "--timeout", "16s"]);
            let next = crate::util::spawn_command(cmd, &read_fixture("sensu/create.json"));
            fake.wait_for("the next event following Bob's call", |calls| calls[1].fetches > fetched);
            next
        });
        let resolve = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &["--timeout", "16s"]);
        assert_eq!(resolve.code, Some(0), "{resolve:?}");
        let log = match next {
            Some(next) => {
                let r = crate::util::finish(next);
                assert_eq!(r.code, Some(0), "{r:?}");
                assert!(r.stderr.contains("carrying on from a run that ended mid-way"), "{}", r.stderr);
                assert!(r.stderr.contains("stopped: web-01/check_disk was resolved meanwhile"), "{}", r.stderr);
                r.stderr
            }
            None => resolve.stderr,
        };
        assert_eq!(called(&fake), vec![ONE, TWO], "carried on {carried_on}: {log}");
        assert_both_cancelled(&fake, &format!("carried on {carried_on}: {log}"));
    }
}

/// A resolve recorded while Twilio keeps answering a sequential call's create with a 503
/// (ListCall shows nothing placed, so it is tried again) or a 429 (retried), or while the
/// person's text is retried: the run stops before the call goes out. Before, the create was
/// tried again until Twilio took it (and placed right after a text), and the call rang after
/// the resolve (cancelled only at its first status check).
#[test]
fn a_resolve_while_a_sequential_call_is_tried_again_stops_the_run_before_the_call_goes_out() {
    for (script, n, channels) in [
        (Script::Unavailable, 8, json!(["voice"])),
        (Script::RateLimited, 11, json!(["voice"])),
        (Script::RateLimited, 11, json!(["voice", "sms"])),
    ] {
        let fake = FakeTwilio::start(&vec![script; n]);
        let sb = sandbox(sequential(json!({"channels": channels})));
        let cmd = sb.command(&["--api-url", &fake.url, "--timeout", "60s"]);
        let calling = crate::util::spawn_command(cmd, &read_fixture("sensu/create.json"));
        crate::util::wait_until(
            "the first create answered",
            std::time::Duration::from_secs(60),
            || (fake.script_left() < n).then_some(()),
            || format!("{:?}", fake.calls()),
        );
        let resolve = run(&sb, &fake, &read_fixture("sensu/resolve.json"), &["--timeout", "60s"]);
        assert_eq!(resolve.code, Some(0), "{resolve:?}");
        let r = crate::util::finish(calling);
        assert_eq!(r.code, Some(0), "{script:?}: {r:?}");
        assert!(r.stderr.contains("stopped: web-01/check_disk was resolved meanwhile"), "{script:?}: {}", r.stderr);
        assert!(fake.calls().is_empty(), "{script:?}: no call after the resolve: {:?}\n{}", fake.calls(), r.stderr);
        if channels == json!(["voice"]) {
            assert!(fake.script_left() > 0, "{script:?}: the create was not tried until Twilio took it: {}", r.stderr);
        }
        fake.assert_no_violations();
        // The slot it took was given back.
        if sb.state_file("twilio", "recipients%3Acalls.json").exists() {
            let caps = sb.state("twilio", "recipients%3Acalls.json");
            assert!(caps["calls"].get(ONE).and_then(Value::as_array).is_none_or(Vec::is_empty), "{script:?}: {caps}");
        }
    }
}

/// The same for a spooled sequential run a flush carries on: a 502 after the call was placed
/// is looked up and that call followed; nobody is called twice.
#[test]
fn a_spooled_sequential_run_whose_call_is_answered_502_at_the_flush_calls_nobody_twice() {
    let sb = spooled_sequential();
    spool_a_sequential_run(&sb, &read_fixture("sensu/create.json"));
    let fake = FakeTwilio::start(&[Script::AcceptThenFail(502)]);
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!(called(&fake), vec![ONE], "{}", r.stderr);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains(&format!("ListCall has the call to {ONE}")), "{}", r.stderr);
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_disk.json")["refs"]["answered"]["phone"], ONE);
    assert!(sb.spooled("twilio").is_empty(), "{}", r.stderr);
    fake.assert_no_violations();
}

/// Another incident's event carries a spooled run on within its share of the deadline, and a
/// run that cannot finish in its share holds back only its own incident.
#[test]
fn other_invocations_carry_a_spooled_run_on_and_an_unfinished_run_holds_back_only_its_incident() {
    let sb = spooled_sequential();
    spool_a_sequential_run(&sb, &event_for_check("check_a"));
    let r = sb.run(&["--api-url", REFUSED_URL, "--timeout", "16s"], &event_for_check("check_b"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("twilio").len(), 2, "{}", r.stderr);
    // check_a's first call rings on; check_b's is answered. A short flush: check_a's run waits
    // with its call noted, check_b's goes out behind it.
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing, Outcome::Answered]);
    let r = sb.run(&["--flush", "--timeout", "3s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("1 delivered, 0 moved to failed/, 1 still queued"), "{}", r.stderr);
    assert_eq!(called(&fake), vec![ONE, ONE], "{}", r.stderr);
    let spoken_by = |i: usize| spoken(&fake.to(CALLS)[i]);
    assert!(spoken_by(0).starts_with("web-01 check_a is critical."), "{}", spoken_by(0));
    assert!(spoken_by(1).starts_with("web-01 check_b is critical."), "{}", spoken_by(1));
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_b.json")["refs"]["answered"]["phone"], ONE);
    // The next event of a third incident carries check_a's run on in its own share: the
    // ringing call ends unanswered, Bob is called and answers.
    fake.end_call(&fake.calls()[0].sid, Outcome::NoAnswer);
    let r = run(&sb, &fake, &event_for_check("check_c"), &["--timeout", "16s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(sb.spooled("twilio").is_empty(), "{}", r.stderr);
    assert_eq!(sb.state("twilio", "web-01%2Fcheck_a.json")["refs"]["answered"]["phone"], TWO, "{}", r.stderr);
    assert_eq!(called(&fake), vec![ONE, ONE, TWO, ONE], "{}", r.stderr);
    fake.assert_no_violations();
}

#[test]
fn daily_rotation_starts_with_someone_else_the_next_day_in_the_configured_timezone() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(sequential(json!({"recipients": [ONE, TWO, THREE], "rotation": "daily", "timezone": "+09:00"})));
    let first = |now: u64| {
        let before = fake.calls().len();
        let r = run_at(&sb, &fake, now, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
        assert_eq!(r.code, Some(0), "{r:?}");
        let calls = called(&fake);
        assert_eq!(calls.len(), before + 1, "the first person answers: {calls:?}");
        calls[before].clone()
    };
    // 21 Nov in Tokyo (day 20778 since 1970, 20778 mod 3 = 0): the list as written.
    assert_eq!(first(NOV21), ONE);
    // 22 Nov in Tokyo, a day later (the refresh has long passed): Bob first.
    assert_eq!(first(NOV21 + 86_400), TWO);
    fake.assert_no_violations();
}

/// A tz database zone: the day changes at New York's midnight, which in July is 04:00 UTC
/// (daylight saving time, -04:00); a fixed -05:00 would change it an hour later.
#[test]
fn daily_rotation_follows_daylight_saving_time_in_a_named_zone() {
    const JUL1: u64 = 1_782_864_000; // 2026-07-01T00:00:00Z: 30 June, 20:00 in New York
    if !require_program("/usr/share/zoneinfo/America/New_York", "tzdata") {
        return;
    }
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(sequential(json!({"recipients": [ONE, TWO, THREE], "rotation": "daily", "timezone": "America/New_York"})));
    let first = |now: u64| {
        let before = fake.calls().len();
        let r = run_at(&sb, &fake, now, &read_fixture("sensu/create.json"), &["--timeout", "60s"]);
        assert_eq!(r.code, Some(0), "{r:?}");
        called(&fake)[before].clone()
    };
    // 30 June, 22:00 in New York (day 20634, 20634 mod 3 = 0): the list as written.
    assert_eq!(first(JUL1 + 2 * 3600), ONE);
    // 1 July, 00:00 in New York: Bob first.
    assert_eq!(first(JUL1 + 4 * 3600), TWO);
    fake.assert_no_violations();
}

#[test]
fn a_fourth_call_to_one_number_within_15_minutes_is_not_placed() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"recipients": [ONE]}));
    let t0 = NOV21;
    for (i, check) in ["check_a", "check_b", "check_c", "check_d"].iter().enumerate() {
        let r = run_at(&sb, &fake, t0 + 60 * i as u64, &event_for_check(check), &[]);
        assert_eq!(r.code, Some(0), "{r:?}");
        if i < 3 {
            assert!(!r.stderr.contains("not calling"), "{}", r.stderr);
        } else {
            assert!(
                r.stderr.contains(&format!("twilio: warn: not calling {ONE}: already 3 calls in the last 15m (call_caps 15m: 3)")),
                "{}",
                r.stderr
            );
            // Texted instead: the cap limits how often the phone rings, not whether the page arrives.
            assert!(r.stderr.contains("triggered web-01/check_d (1 of 1 requests accepted: SMS SM"), "{}", r.stderr);
            assert!(r.stderr.contains("; not called, over the call cap"), "{}", r.stderr);
        }
    }
    assert_eq!(fake.to(CALLS).len(), 3);
    assert_eq!(fake.to(MESSAGES).len(), 1, "the fourth page, texted");
    assert_eq!(sb.state("twilio", "recipients%3Acalls.json")["calls"][ONE], json!([t0, t0 + 60, t0 + 120]));
    // Fifteen minutes after the first call there is room again.
    let r = run_at(&sb, &fake, t0 + 15 * 60, &event_for_check("check_e"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.to(CALLS).len(), 4);
    fake.assert_no_violations();
}

#[test]
fn concurrent_handlers_never_exceed_the_cap_together() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"recipients": [ONE, TWO]}));
    // Eight different incidents at the same moment, eight processes racing for the slots.
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut cmd = sb.command(&["--api-url", &fake.url]);
            cmd.env("PAGERPIPE_NOW", NOV21.to_string());
            let mut child = cmd.spawn().expect("spawn handler");
            {
                use std::io::Write;
                let mut stdin = child.stdin.take().expect("stdin");
                stdin.write_all(&event_for_check(&format!("check_{i}"))).expect("write the event");
            }
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait handler");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    fake.assert_no_violations();
    let calls = called(&fake);
    for to in [ONE, TWO] {
        assert_eq!(calls.iter().filter(|c| *c == to).count(), 3, "{to} called exactly 3 times: {calls:?}");
    }
    let caps = sb.state("twilio", "recipients%3Acalls.json");
    assert_eq!(caps["calls"][ONE], json!([NOV21, NOV21, NOV21]), "no update lost: {caps}");
}

#[test]
fn test_flag_rehearses_with_a_fixed_message_every_time_within_the_caps() {
    let fake = FakeTwilio::start(&[]);
    // Even a configuration that would page for nothing but warnings rehearses.
    let sb = sandbox(json!({"channels": ["voice", "sms"], "severities": ["warning"], "conference": true}));
    let expected = "This is a test page from pagerpipe on rehearsal-01. Nothing is wrong and no action is needed.";
    for round in 1..=4usize {
        let r = run_at(&sb, &fake, NOV21, b"", &["--test", "--entity", "rehearsal-01"]);
        assert_eq!(r.code, Some(0), "{r:?}");
        let calls = fake.to(CALLS);
        // Not swallowed by dedup: every run calls again, until the caps (3 per 15 minutes) stop it.
        assert_eq!(calls.len(), 3 * round.min(3), "round {round}: {}", r.stderr);
        assert_eq!(fake.to(MESSAGES).len(), 3 * round, "SMS is not capped");
        if round == 4 {
            assert_eq!(r.stderr.matches("not calling").count(), 3, "{}", r.stderr);
        }
    }
    fake.assert_no_violations();
    for c in fake.to(CALLS) {
        assert_eq!(spoken(&c), expected);
        assert_eq!(c.twiml.as_ref().expect("Twiml").conference.as_deref(), Some("rehearsal-01/pagerpipe-test"));
    }
    assert!(fake.to(MESSAGES).iter().all(|m| m.param("Body") == Some(expected)));
    // --test reads no event, so it cannot be combined with one.
    let r = run(&sb, &fake, b"", &["--test", "--from", "nagios"]);
    assert_eq!(r.code, Some(2), "{r:?}");
}

#[test]
fn sequential_mode_with_a_timeout_too_short_for_one_call_exits_78() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"mode": "sequential"}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("settings `twilio.timeout`: 10s is too short for sequential mode"), "{}", r.stderr);
    assert!(fake.accepted().is_empty());
    // --mode is checked by clap.
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"), &["--mode", "round-robin"]);
    assert_eq!(r.code, Some(2), "{r:?}");
}

#[test]
fn dry_run_in_sequential_mode_shows_the_calling_order_and_sends_nothing() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(sequential(json!({"rotation": "daily", "timezone": "UTC"})));
    let r = run_at(&sb, &fake, NOV21 + 86_400, &read_fixture("sensu/create.json"), &["--dry-run", "--timeout", "60s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    // 22 Nov is day 20779 since 1970; 20779 mod 4 = 3: Dan first.
    assert!(
        r.stderr.contains(&format!("until a person answers (up to 2 rounds): Dan {FOUR}, {ONE}, Bob {TWO}, 花子 {THREE}")),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout.matches("\"To\"").count(), 4, "{}", r.stdout);
    assert!(fake.accepted().is_empty());
}

#[test]
fn the_example_configuration_is_valid() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d/twilio.json");
    let sb = Sandbox::new(BIN);
    let mut cmd = sb.command(&["--dry-run"]);
    cmd.arg("--config").arg(&example).env("PAGERPIPE_NOW", NOV21.to_string());
    let r = run_command(cmd, &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(0), "{r:?}");
    // Sequential, rotated daily in Tokyo: on 21 Nov (day 20778, 20778 mod 3 = 0) Alice first.
    assert!(
        r.stderr.contains("until a person answers (up to 2 rounds): Alice +14155550101, Bob +14155550102, +819012345678"),
        "{}",
        r.stderr
    );
    let bodies: Vec<Value> = serde_json::Deserializer::from_str(&r.stdout).into_iter().collect::<Result<_, _>>().expect("JSON bodies");
    assert_eq!(bodies.len(), 6, "3 calls and 3 SMS: {}", r.stdout);
    assert_eq!(bodies[0]["MachineDetection"], "Enable");
    assert!(
        bodies[0]["Twiml"].as_str().is_some_and(|t| t.starts_with("<Response><Pause length=\"1\"/><Say") && t.contains("<Conference>")),
        "{}",
        bodies[0]
    );
    assert!(bodies[3]["Body"].as_str().is_some_and(|b| b.starts_with("web-01 check_disk is critical.")), "{}", bodies[3]);
}

#[test]
fn calls_spooled_while_twilio_is_down_are_placed_by_flush_but_dropped_once_the_incident_recovers() {
    let down = REFUSED_URL;
    let sb = sandbox(json!({}));
    // Twilio unreachable: the three calls wait in the spool.
    let r = sb.run(&["--api-url", down, "--timeout", "1s"], &event_for_check("check_a"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("twilio").len(), 3, "{}", r.stderr);
    let r = sb.run(&["--api-url", down, "--timeout", "1s"], &event_for_check("check_b"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("twilio").len(), 6);
    // check_b recovers (a later check run) before Twilio is back: a resolve sends nothing
    // without notify_on_resolve, but it is recorded, and check_b's calls become stale.
    let mut resolve: Value = serde_json::from_slice(&fixture_at("sensu/resolve.json", 1_900_000_000)).expect("fixture JSON");
    resolve["check"]["name"] = "check_b".into();
    let r = sb.run(&["--api-url", down, "--timeout", "1s"], resolve.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    // Back (at the URL the settings now name): check_a's calls go out, check_b's are dropped.
    let fake = FakeTwilio::start(&[]);
    let r = sb.run(&["--flush", "--timeout", "5s", "--api-url", &fake.url], b"");
    // Dropping a call for a recovered incident is deliberate, not a failure: exit 0.
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("3 delivered, 3 moved to failed/, 0 still queued"), "{}", r.stderr);
    fake.assert_no_violations();
    assert_eq!(called(&fake), vec![ONE, TWO, THREE], "{}", r.stderr);
    assert!(fake.calls().iter().all(|c| c.to != FOUR));
    for c in fake.to(CALLS) {
        assert!(spoken(&c).starts_with("web-01 check_a is critical."), "{}", spoken(&c));
    }
    assert_eq!(r.stderr.matches("superseded").count(), 3, "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty());
}

/// A token rotated at Twilio and not yet in the settings: a flush's calls are answered 401 /
/// 20003. They stay in the spool (exit 78, not moved to `failed/`): the flush builds each with
/// the credentials in force, so the flush after the fix places them. (A live event's 401 stays
/// a refusal, exit 69: `bad_credentials_exit_69_with_twilios_error`.)
#[test]
fn calls_a_flush_cannot_authenticate_stay_spooled_until_the_credentials_are_fixed() {
    let sb = sandbox(json!({}));
    let r = sb.run(&["--api-url", REFUSED_URL, "--timeout", "1s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("twilio").len(), 3, "{}", r.stderr);
    let fake = FakeTwilio::start(&[]);
    let wrong = "not-the-token-000000000000";
    let r = sb.run(&["--flush", "--timeout", "5s", "--api-url", &fake.url, "--auth-token", wrong], b"");
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(
        r.stderr.contains("HTTP 401 Twilio error 20003") && r.stderr.contains("fix the configuration; the entry is kept"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(wrong), "the token is masked: {}", r.stderr);
    assert!(fake.to(CALLS).is_empty());
    assert_eq!(sb.spooled("twilio").len(), 3, "kept: {}", r.stderr);
    assert!(sb.failed("twilio").is_empty(), "{:?}", sb.failed("twilio"));
    // Fixed: the next flush places every call, once.
    let r = sb.run(&["--flush", "--timeout", "5s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("3 delivered, 0 moved to failed/, 0 still queued"), "{}", r.stderr);
    assert_eq!(called(&fake), vec![ONE, TWO, THREE], "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty());
}

/// A corporate proxy that blocks api.twilio.com answers its own 403 page, no Twilio error: the
/// calls were refused for good (exit 69) and nobody was ever called. Not Twilio's answer, it is
/// this machine's configuration: the calls are kept (78) for the flush after the fix.
#[test]
fn a_proxys_403_page_keeps_the_calls_for_the_flush_after_the_fix() {
    use crate::fake::{Received, Reply, Server};
    let sb = sandbox(json!({}));
    let proxy =
        Server::start(|_r: &Received| Reply::Raw(403, "text/html", Vec::new(), "<html><body>Access denied by policy</body></html>".into()));
    let r = sb.run(&["--api-url", &proxy.url, "--timeout", "2s"], &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("HTTP 403") && r.stderr.contains("not the service's own answer"), "{}", r.stderr);
    assert_eq!(sb.spooled("twilio").len(), 3, "{}", r.stderr);
    let fake = FakeTwilio::start(&[]);
    let r = sb.run(&["--flush", "--timeout", "5s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(called(&fake), vec![ONE, TWO, THREE], "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty());
    fake.assert_no_violations();
}

/// The same for a spooled sequential run: a flush carrying it on whose calls are answered 401
/// keeps it, and the flush after the fix runs it.
#[test]
fn a_sequential_run_a_flush_cannot_authenticate_stays_spooled_until_the_credentials_are_fixed() {
    let sb = spooled_sequential();
    spool_a_sequential_run(&sb, &read_fixture("sensu/create.json"));
    let fake = FakeTwilio::start(&[]);
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url, "--auth-token", "not-the-token-000000000000"], b"");
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("20003") && r.stderr.contains("fix the configuration; the entry is kept"), "{}", r.stderr);
    assert!(fake.to(CALLS).is_empty());
    assert_eq!(sb.spooled("twilio").len(), 1, "kept: {}", r.stderr);
    assert!(sb.failed("twilio").is_empty(), "{:?}", sb.failed("twilio"));
    fake.outcomes(&[Outcome::Answered]);
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(called(&fake), vec![ONE], "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty());
}

/// Nagios runs the PROBLEM and the RECOVERY notification of one second in parallel (a passive
/// result CRITICAL then OK), and the RECOVERY's handler may come first. With no record of the
/// incident yet (its first failure, or a week after the last one was forgotten), handler-twilio
/// skips a recovery nobody was paged for: that skip is now noted with its event id, so the
/// PROBLEM arriving after it is superseded. Nobody was called for a service that had already
/// recovered (everyone was).
#[test]
fn a_nagios_problem_arriving_after_its_own_recovery_calls_nobody_even_without_a_record() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({}));
    let t = (crate::util::unix_now() - 5).to_string();
    let notify = |kind: &str, state: &str, id: &str| {
        let fields = [
            format!("NOTIFICATIONTYPE={kind}"),
            "HOSTNAME=web-01".into(),
            "SERVICEDESC=queue".into(),
            format!("SERVICESTATE={state}"),
            format!("TIMET={t}"),
            format!("SERVICEEVENTID={id}"),
        ];
        let args = crate::util::nagios_fields(&fields);
        let r = run(&sb, &fake, b"", &args);
        assert_eq!(r.code, Some(0), "{r:?}");
        r
    };
    notify("RECOVERY", "OK", "11");
    let r = notify("PROBLEM", "CRITICAL", "10");
    assert!(r.stderr.contains("superseded"), "{}", r.stderr);
    assert!(fake.to(CALLS).is_empty(), "called for a service that had recovered: {}", r.stderr);
    // The next state change pages as usual.
    notify("PROBLEM", "CRITICAL", "12");
    assert_eq!(fake.to(CALLS).len(), 3);
    fake.assert_no_violations();
}

/// Without a usable ledger (Redis unreachable) no hold keeps two flushes apart: the minute
/// timer's flush and another one (an event's own, or an overlapping `--flush`) each carried on
/// the same spooled sequential run, and its first person was rung twice at once. The spool's
/// claim on the incident lets one carry it on; the other leaves it queued (exit 75).
#[test]
fn two_flushes_without_a_ledger_carry_on_one_spooled_run_once() {
    let (sb, no_ledger) = (run_spooled_without_a_ledger(), NO_LEDGER);
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing, Outcome::Ringing]);
    let args = [&["--flush", "--timeout", "6s", "--api-url", &fake.url][..], &no_ledger].concat();
    let a = crate::util::spawn_command(sb.command(&args), b"");
    let b = crate::util::spawn_command(sb.command(&args), b"");
    let (a, b) = (crate::util::finish(a), crate::util::finish(b));
    let both = format!("{}\n----\n{}", a.stderr, b.stderr);
    let rung_one = called(&fake).iter().filter(|to| *to == ONE).count();
    assert_eq!(rung_one, 1, "{:?}\n{both}", called(&fake));
    assert!(fake.overlaps().is_empty(), "{:?}\n{both}", fake.overlaps());
    assert!(both.contains("is being flushed by another invocation; its entries wait"), "{both}");
    assert!([a.code, b.code].contains(&Some(75)), "the flush that left the run queued says so: {both}");
    fake.assert_no_violations();
}

/// A handler killed after it spooled its sequential run, before it cleared its note of the run
/// in flight, leaves both in place: the ledger's record still says the run is in flight, and
/// the spool holds it. The next holder spooled the note again, with the same token: the first
/// copy called everyone without an answer (which records nothing), and the second called
/// everyone again from the top. The note whose run is already queued is not spooled again.
#[test]
fn a_run_spooled_by_a_killed_handler_and_still_noted_in_flight_is_carried_on_once() {
    use std::os::unix::fs::PermissionsExt;
    let sb = spooled_sequential();
    spool_a_sequential_run(&sb, &read_fixture("sensu/create.json"));
    // What the kill left: the record still notes the spooled run in flight.
    let (_, entry) = sb.spooled_entry("twilio", "");
    let record = sb.state_file("twilio", "web-01%2Fcheck_disk.json");
    let mut rec: Value = std::fs::read(&record).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_else(|| json!({}));
    rec["inflight"] = json!([entry]);
    std::fs::write(&record, rec.to_string()).unwrap();
    std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::NoAnswer; 8]);
    let r = sb.run(&["--flush", "--timeout", "40s", "--api-url", &fake.url], b"");
    assert_eq!(called(&fake), vec![ONE, TWO, ONE, TWO], "one run of two rounds: {}", r.stderr);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(sb.spooled("twilio").is_empty(), "{}", r.stderr);
    assert!(fake.overlaps().is_empty(), "{:?}", fake.overlaps());
    fake.assert_no_violations();
}

/// The live side of the same race: without a usable ledger, an event for the incident arriving
/// while a flush carries on its spooled sequential run carried the run on too (the entry is
/// its incident's tail, delivered before the event), and the first person was rung twice. One
/// of them claims the run; the other leaves it to that one.
#[test]
fn an_event_without_a_ledger_does_not_carry_on_the_run_a_flush_is_carrying_on() {
    let (sb, no_ledger) = (run_spooled_without_a_ledger(), NO_LEDGER);
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing, Outcome::Ringing]);
    let flush = [&["--flush", "--timeout", "6s", "--api-url", &fake.url][..], &no_ledger].concat();
    let live = [&["--timeout", "16s", "--api-url", &fake.url][..], &no_ledger].concat();
    let a = crate::util::spawn_command(sb.command(&flush), b"");
    let b = crate::util::spawn_command(sb.command(&live), &read_fixture("sensu/create.json"));
    let (a, b) = (crate::util::finish(a), crate::util::finish(b));
    let both = format!("{}\n----\n{}", a.stderr, b.stderr);
    let rung_one = called(&fake).iter().filter(|to| *to == ONE).count();
    assert_eq!(rung_one, 1, "{:?}\n{both}", called(&fake));
    assert!(fake.overlaps().is_empty(), "{:?}\n{both}", fake.overlaps());
    assert!(both.contains("is being flushed by another invocation; its entries wait"), "{both}");
    fake.assert_no_violations();
}

/// Zabbix's Problem update template (conf.d/zabbix-pagerduty.md), expanded for `action` by
/// Ann Admin, for the problem of the fixture `zabbix/problem-high.txt`.
fn zabbix_update(action: &str) -> String {
    String::from_utf8(read_fixture("zabbix/problem-high.txt"))
        .expect("UTF-8 fixture")
        .replace("\nname:", &format!("\nupdate_action:{action}\nuser:Ann Admin (ann)\nname:"))
}

/// An operator acknowledges the Zabbix problem (an action's update operations, subject
/// `update`) while a sequential run rings the first person: the run stops, the ringing call is
/// cancelled, nobody else is called. A comment on the same problem, the update that follows,
/// calls nobody and exits 0. Before, Zabbix had no acknowledge: an update was read as the
/// problem again, so the calls went on after someone took it.
#[test]
fn a_zabbix_acknowledgement_stops_a_sequential_run_and_a_comment_calls_nobody() {
    let fake = FakeTwilio::start(&[]);
    fake.outcomes(&[Outcome::Ringing]);
    let sb = sandbox(sequential(json!({})));
    let problem = String::from_utf8(read_fixture("zabbix/problem-high.txt")).expect("UTF-8 fixture");
    let zabbix =
        |subject: &str, message: &str| sb.command(&["--api-url", &fake.url, "--timeout", "60s", "--from", "zabbix", "", subject, message]);
    let calling = zabbix("trigger", &problem).spawn().expect("spawn handler");
    fake.wait_for("the first call being polled", |calls| calls.len() == 1 && calls[0].fetches >= 1);
    let ack = run_command(zabbix("update", &zabbix_update("acknowledged and commented")), b"");
    assert_eq!(ack.code, Some(0), "{ack:?}");
    let out = calling.wait_with_output().expect("wait handler");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("was acknowledged meanwhile"), "{stderr}");
    let comment = run_command(zabbix("update", &zabbix_update("commented")), b"");
    assert_eq!(comment.code, Some(0), "{comment:?}");
    assert!(comment.stderr.contains("(\"commented\") is not paged"), "{}", comment.stderr);
    fake.assert_no_violations();
    assert_eq!(called(&fake), vec![ONE], "nobody after the acknowledgement: {stderr}");
    assert!(fake.calls()[0].canceled, "the ringing call was cancelled: {:?}", fake.calls());
    let st = sb.state("twilio", "23504-web-01.json");
    assert_eq!(st["open"], true, "{st}");
    assert!(st["acknowledged_at"].as_u64().is_some(), "recorded as acknowledged: {st}");
}

/// A check chooses `twilio.timezone`, and a zone is a file of the tz database (`$TZDIR`). A
/// FIFO there (any name without dots, `Foo/Bar`) was opened for reading and the handler
/// waited for a writer for ever, past its --timeout: nobody called. Now what is not a regular
/// file is no zone: the check's setting is ignored with a warning, and the call goes out.
#[cfg(unix)]
#[test]
fn a_fifo_named_as_a_checks_timezone_does_not_hold_the_call_up() {
    let fake = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"rotation": "daily", "timezone": "UTC"}));
    let tzdir = sb.dir.path().join("zoneinfo");
    std::fs::create_dir_all(tzdir.join("Foo")).unwrap();
    let made = std::process::Command::new("mkfifo").arg(tzdir.join("Foo/Bar")).status().unwrap();
    assert!(made.success());
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["check"]["twilio"] = json!({"timezone": "Foo/Bar"});
    let mut cmd = sb.command(&["--api-url", &fake.url, "--timeout", "5s"]);
    cmd.env("TZDIR", &tzdir);
    let mut child = crate::util::spawn_command(cmd, ev.to_string().as_bytes());
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
        let r = crate::util::finish(child);
        panic!("still reading the FIFO after 20 s (--timeout 5s): {r:?}");
    }
    let r = crate::util::finish(child);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("event override `twilio.timezone` ignored"), "{}", r.stderr);
    assert!(!fake.calls().is_empty(), "the call goes out: {r:?}");
    fake.assert_no_violations();
}

/// A call SID from Twilio's create answer goes into the path of the calls that follow and
/// cancel it (FetchCall, UpdateCall: `Sid`, `^CA[0-9a-fA-F]{32}$` in the spec). One that is no
/// call SID is never put in a path: the answer does not choose where a request goes (here
/// `…/Calls/CA…/../../Messages.json`), and Twilio would refuse it anyway.
#[test]
fn a_call_sid_in_an_answer_that_is_no_call_sid_is_never_put_in_a_path() {
    use crate::fake::{Received, Reply, Server};
    use std::sync::{Arc, Mutex};
    let bad = format!("CA{}/../../Messages", "0".repeat(31) + "1");
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = Arc::clone(&seen);
    let answer = bad.clone();
    let server = Server::start(move |r: &Received| {
        log.lock().unwrap().push((r.method.clone(), r.url.clone()));
        if r.method == "POST" && r.url.ends_with("/Calls.json") {
            Reply::Json(201, json!({"sid": answer, "account_sid": ACCOUNT_SID, "to": ONE, "from": FROM, "status": "queued"}))
        } else {
            Reply::Json(404, json!({"code": 20404, "message": "not found", "status": 404}))
        }
    });
    let sb = sandbox(sequential(json!({"recipients": [ONE], "rounds": 1, "channels": ["voice"]})));
    let r = sb.run(&["--api-url", server.url.as_str(), "--timeout", "20s"], &read_fixture("sensu/create.json"));
    assert!(r.code.is_some(), "{r:?}");
    let seen = seen.lock().unwrap().clone();
    let calls = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json");
    assert!(seen.iter().any(|(m, u)| m == "POST" && *u == calls), "the call was placed: {seen:?}");
    for (method, url) in &seen {
        let path = url.split('?').next().unwrap_or_default();
        assert!(path == calls, "{method} {url}: only the create (and ListCall) may go out, never a path built from {bad:?}: {seen:?}");
    }
}

/// An acknowledgement handled before its problem's notification (the PROBLEM delayed: busy,
/// spooled, or handed over late by another host) finds nobody called and is skipped; the
/// PROBLEM from before it then arrives. Before, the acknowledgement's time was not noted
/// (the record had no open incident) and the PROBLEM rang everyone after the operator had
/// taken the problem; now it is superseded by the acknowledgement. Found by the chaos soak.
#[test]
fn a_problem_arriving_after_its_acknowledgement_rings_nobody() {
    let fake = FakeTwilio::start(&[]);
    let sb = twilio_sandbox(json!({"recipients": [ONE, TWO]}));
    let now = crate::util::unix_now();
    let nagios = |kind: &str, at: i64| crate::util::nagios_at(&sb, &["--api-url", &fake.url], kind, at);
    let r = nagios("ACKNOWLEDGEMENT", now - 10);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("skipped"), "{}", r.stderr);
    let r = nagios("PROBLEM", now - 20);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("superseded"), "{}", r.stderr);
    assert!(fake.to(CALLS).is_empty() && fake.to(MESSAGES).is_empty(), "{}", r.stderr);
    // A problem after the acknowledgement is a new one: it rings.
    let r = nagios("PROBLEM", now);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!fake.to(CALLS).is_empty(), "{}", r.stderr);
    fake.assert_no_violations();
}

/// An acknowledgement that sends nothing, handled while its incident's older requests wait in
/// the spool (Twilio down: the RESOLVED SMS of a recovery, and the calls of the failure after
/// it, queued behind that SMS), queues behind them (exit 75) and is recorded at its turn. Before,
/// it was recorded at once, ahead of them ("nothing sent: recorded", exit 0), and the flush
/// dropped the SMS and the new failure's calls as superseded by it: the new problem rang
/// nobody. Found by the chaos soak (repro_twilio_ack_jumps_queue).
#[test]
fn an_acknowledgement_queues_behind_the_requests_its_incident_still_has_spooled() {
    let fake = FakeTwilio::start(&[]);
    let sb = twilio_sandbox(json!({"recipients": [ONE, TWO], "notify_on_resolve": true}));
    let now = crate::util::unix_now();
    let nagios = |kind: &str, at: i64, api: &str| {
        let mut cmd = sb.command(&["--api-url", api, "--from", "nagios", "--timeout", "1s"]);
        match kind {
            "ACKNOWLEDGEMENT" => crate::util::nagios_ack(&mut cmd, "bob"),
            "RECOVERY" => crate::util::nagios_critical(&mut cmd, kind).env("NAGIOS_SERVICESTATE", "OK"),
            _ => crate::util::nagios_critical(&mut cmd, kind),
        };
        cmd.env("NAGIOS_TIMET", at.to_string());
        run_command(cmd, b"")
    };
    let r = nagios("PROBLEM", now - 40, &fake.url);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(fake.to(CALLS).len(), 2, "{}", r.stderr);
    // Twilio unreachable: the RESOLVED SMS wait in the spool, and the next failure's calls
    // queue behind them.
    let r = nagios("RECOVERY", now - 30, REFUSED_URL);
    assert_eq!(r.code, Some(75), "{r:?}");
    let r = nagios("PROBLEM", now - 20, REFUSED_URL);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("twilio").len(), 4, "{}", r.stderr);
    // The operator takes the new problem: nothing to send, but it comes after them.
    let r = nagios("ACKNOWLEDGEMENT", now - 10, REFUSED_URL);
    assert_eq!(r.code, Some(75), "queued behind the spooled requests, not recorded ahead of them: {r:?}");
    assert!(r.stderr.contains("4 older request(s) for this incident are still spooled"), "{}", r.stderr);
    assert_eq!(sb.spooled("twilio").len(), 5, "{}", r.stderr);
    assert_ne!(sb.state("twilio", "web-01%2Fcheck_disk.json")["last_action"], "acknowledge");
    // Twilio is back: the SMS, then the new failure's calls, then the acknowledgement.
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("5 delivered, 0 moved to failed/, 0 still queued"), "{}", r.stderr);
    fake.assert_no_violations();
    let to = |resource: &str| fake.to(resource).iter().map(|a| a.param("To").unwrap_or("").to_string()).collect::<Vec<_>>();
    assert_eq!(to(MESSAGES), [ONE, TWO], "the RESOLVED SMS: {}", r.stderr);
    assert_eq!(to(CALLS), [ONE, TWO, ONE, TWO], "the new failure rang everyone: {}", r.stderr);
    assert!(sb.failed("twilio").is_empty(), "{:?}", sb.failed("twilio"));
    let st = sb.state("twilio", "web-01%2Fcheck_disk.json");
    assert_eq!((st["open"].clone(), st["last_action"].clone()), (json!(true), json!("acknowledge")), "{st}");
    assert!(st["acknowledged_at"].as_u64().is_some(), "{st}");
}

/// A call queued behind an older request of its incident (a call of unknown fate, sent again by
/// the next event and unanswered again) is never sent by that invocation, and is no attempt of
/// unknown fate to its number. Before, it was noted as one: the flush found one call to the
/// number that nobody held and two attempts that might own it, could not tell whether the
/// spooled call had been placed, placed it again, and rang the person twice for one page.
/// Found by the chaos soak (repro_twilio_queued_attempt).
#[test]
fn a_call_queued_behind_a_call_of_unknown_fate_does_not_make_the_flush_ring_twice() {
    // The first call answered 500 (its fate unknown: spooled); sent again by the repeat's
    // invocation, placed with no answer (unknown again).
    let fake = FakeTwilio::start(&[Script::ServerError, Script::Accept, Script::AcceptThenHang]);
    let sb = twilio_sandbox(json!({"recipients": [ONE, TWO]}));
    let t = crate::util::unix_now();
    let r = run(&sb, &fake, &fixture_at("sensu/create.json", t - 20), &["--timeout", "2s"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(sb.spooled("twilio").len(), 1, "{}", r.stderr);
    // The failure's next event: the spooled call goes first, placed, unanswered; this event's
    // own calls queue behind it.
    let r = run(&sb, &fake, &fixture_at("sensu/create.json", t - 10), &["--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("1 older request(s) for this incident are still spooled"), "{}", r.stderr);
    assert_eq!(sb.spooled("twilio").len(), 3, "{}", r.stderr);
    assert_eq!(fake.calls().iter().filter(|c| c.to == ONE).count(), 1, "{}", r.stderr);
    // The flush finds that call placed: nobody is rung twice.
    let r = sb.run(&["--flush", "--timeout", "10s", "--api-url", &fake.url], b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    fake.assert_no_violations();
    let called: Vec<String> = fake.calls().iter().map(|c| c.to.clone()).collect();
    assert_eq!(called, [TWO, ONE], "each person rung once: {}", r.stderr);
    assert!(r.stderr.contains("the service had acted on it after all; not sent again"), "{}", r.stderr);
    assert!(sb.spooled("twilio").is_empty(), "{}", r.stderr);
}
