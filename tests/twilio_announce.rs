//! handler-twilio tells the team who answered: one message to a Slack incoming webhook (or a
//! channel through chat.postMessage), checked by the fake Slack, while the fake Twilio scripts
//! who picks up.

use serde_json::{Value, json};

use crate::fake::slack::{self, FakeSlack};
use crate::fake::twilio::{FakeTwilio, Outcome};
use crate::util::{REFUSED_URL, Run, Sandbox, laid_over, read_fixture, run_command, twilio_settings};

const BIN: &str = env!("CARGO_BIN_EXE_handler-twilio");
const ALICE: &str = "+14155550101";
const BOB: &str = "+14155550102";
const CAROL: &str = "+819012345678";

/// A sandbox calling Alice, Bob and Carol (in that order), status checks every 20 ms, with
/// `extra` laid over the `twilio` section.
fn sandbox(extra: Value) -> Sandbox {
    let sb = Sandbox::new(BIN);
    sb.config("twilio.json", &settings(extra));
    sb
}

/// The settings file of [`sandbox`].
fn settings(extra: Value) -> Value {
    let section = json!({"recipients": [{"name": "Alice", "phone": ALICE}, {"name": "Bob", "phone": BOB}, {"name": "Carol", "phone": CAROL}],
        "poll_interval": "20ms", "ring_timeout": 5});
    json!({ "twilio": twilio_settings(laid_over(section, extra)) })
}

fn run(sb: &Sandbox, twilio: &FakeTwilio, input: &[u8], extra: &[&str]) -> Run {
    let mut args = vec!["--api-url", twilio.url.as_str(), "--timeout", "60s"];
    args.extend_from_slice(extra);
    sb.run(&args, input)
}

/// The texts of the webhook posts the fake Slack accepted; asserts each is plain, escaped text
/// that mentions nobody, and unfurls no link.
fn announced(slack: &FakeSlack) -> Vec<String> {
    slack.assert_no_violations();
    slack
        .webhook_posts()
        .into_iter()
        .map(|(body, markup)| {
            let text = body["text"].clone();
            assert_eq!(body, json!({"text": text, "unfurl_links": false, "unfurl_media": false}), "{body}");
            assert!(markup.mentions.is_empty() && markup.tokens.is_empty() && markup.bare_ampersands == 0, "{markup:?}");
            body["text"].as_str().unwrap_or("").to_string()
        })
        .collect()
}

/// `text` with the digits of "after Ns" / "in Ns" replaced by `N`, for comparing whole lines
/// without depending on how long the run took.
fn without_times(text: &str) -> String {
    let mut out = String::new();
    let mut digits = false;
    for c in text.chars() {
        if c.is_ascii_digit() && (digits || out.ends_with("after ") || out.ends_with("in ")) {
            if !digits {
                out.push('N');
            }
            digits = true;
        } else {
            digits = false;
            out.push(c);
        }
    }
    out
}

#[test]
fn sequential_second_person_answers_one_webhook_message_names_them() {
    let twilio = FakeTwilio::start(&[]);
    twilio.outcomes(&[Outcome::NoAnswer, Outcome::Answered]);
    let slack = FakeSlack::start();
    let sb = sandbox(json!({"mode": "sequential", "announce_webhook": slack.webhook_url()}));
    let r = run(&sb, &twilio, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    twilio.assert_no_violations();
    assert_eq!(twilio.calls().len(), 2, "Carol is not called");
    let texts = announced(&slack);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(without_times(&texts[0]), "Bob (+14•••••0102) answered the call for web-01/check_disk (critical) after Ns.");
    assert!(!texts[0].contains(BOB), "the number is masked: {}", texts[0]);
    assert!(r.stderr.contains("twilio: announced web-01/check_disk to the announce webhook"), "{}", r.stderr);
    assert!(!r.stderr.contains(slack::WEBHOOK_SECRET), "the webhook URL is a credential: {}", r.stderr);
}

#[test]
fn the_announcement_of_a_huge_entity_stays_within_slacks_4000_characters() {
    // Host names are the hosts' own: a 50 000-character entity made an announcement of over
    // 50 000 characters, where Slack asks for at most 4 000 (spec §5.5).
    let twilio = FakeTwilio::start(&[]);
    let slack = FakeSlack::start();
    let sb = sandbox(json!({"mode": "sequential", "announce_webhook": slack.webhook_url()}));
    let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    ev["client"]["name"] = "<e>".repeat(16_000).into();
    let r = run(&sb, &twilio, ev.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    twilio.assert_no_violations();
    let texts = announced(&slack);
    assert_eq!(texts.len(), 1, "{texts:?}");
    let n = texts[0].chars().count();
    assert!(n <= 4000, "{n} characters");
    let tail: String = texts[0].chars().skip(n.saturating_sub(100)).collect();
    assert!(texts[0].starts_with("Alice (+14•••••0101) answered the call for &lt;e&gt;&lt;e&gt;"), "…{tail}");
    assert!(tail.contains("… after "), "cut where it says so: …{tail}");
}

#[test]
fn sequential_nobody_answers_one_message_says_so_and_the_page_exits_75() {
    let twilio = FakeTwilio::start(&[]);
    twilio.outcomes(&[Outcome::NoAnswer, Outcome::Busy, Outcome::NoAnswer, Outcome::Failed, Outcome::NoAnswer, Outcome::Busy]);
    let slack = FakeSlack::start();
    let sb = sandbox(json!({"mode": "sequential", "rounds": 2, "announce_webhook": slack.webhook_url()}));
    let r = run(&sb, &twilio, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(75), "nobody answered: the next event calls again: {r:?}");
    assert_eq!(twilio.calls().len(), 6);
    let texts = announced(&slack);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(without_times(&texts[0]), "Nobody answered the call for web-01/check_disk (critical): 3 people called twice in Ns.");
}

#[test]
fn webhook_down_the_page_still_exits_0_and_the_failure_is_logged() {
    // Nothing listens there.
    let url = format!("{REFUSED_URL}/services/T0FAKE0001/B0HOOK0001/{}", slack::WEBHOOK_SECRET);
    let twilio = FakeTwilio::start(&[]);
    twilio.outcomes(&[Outcome::NoAnswer, Outcome::Answered]);
    let sb = sandbox(json!({"mode": "sequential", "announce_webhook": url}));
    let r = run(&sb, &twilio, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("twilio: triggered web-01/check_disk (answered by Bob"), "{}", r.stderr);
    assert!(r.stderr.contains("twilio: warn: cannot announce web-01/check_disk to the announce webhook ("), "{}", r.stderr);
    assert!(r.stderr.contains("the page itself is not affected"), "{}", r.stderr);
    assert!(!r.stderr.contains(slack::WEBHOOK_SECRET), "the webhook URL is a credential: {}", r.stderr);

    // A revoked webhook (404 no_service) is not retried, and changes nothing either.
    let slack = FakeSlack::start();
    let revoked = format!("{}/services/T0FAKE0001/B0HOOK0001/RevokedSecret00000000", slack.url);
    twilio.outcomes(&[Outcome::Answered]);
    let sb = sandbox(json!({"mode": "sequential", "announce_webhook": revoked}));
    let r = run(&sb, &twilio, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("(HTTP 404 no_service)"), "{}", r.stderr);
    assert_eq!(slack.calls_to("webhook").len(), 1, "tried once");
}

#[test]
fn broadcast_with_announce_answered_follows_the_calls_until_someone_answers() {
    let twilio = FakeTwilio::start(&[]);
    twilio.outcomes(&[Outcome::NoAnswer, Outcome::Busy, Outcome::Answered]);
    let slack = FakeSlack::start();
    let sb = sandbox(json!({"announce_webhook": slack.webhook_url(), "announce_answered": true}));
    let r = run(&sb, &twilio, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    twilio.assert_no_violations();
    assert_eq!(twilio.calls().len(), 3, "everyone is called at once");
    assert!(twilio.calls().iter().all(|c| c.fetches >= 2), "each call was followed: {:?}", twilio.calls());
    let texts = announced(&slack);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(without_times(&texts[0]), "Carol (+81••••••5678) answered the call for web-01/check_disk (critical) after Ns.");

    // Nobody picks up: one message saying so.
    twilio.outcomes(&[Outcome::NoAnswer, Outcome::Busy, Outcome::Failed]);
    let r = run(&sb, &twilio, &read_fixture("sensu-go/failing.json"), &[]);
    assert_eq!(r.code, Some(0), "broadcast calls were placed: {r:?}");
    let texts = announced(&slack);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(without_times(&texts[1]).ends_with(": 3 people called once in Ns."), "{}", texts[1]);

    // Without announce_answered a broadcast follows no call and announces nothing.
    let sb = sandbox(json!({"announce_webhook": slack.webhook_url()}));
    let r = run(&sb, &twilio, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(announced(&slack).len(), 2);
}

#[test]
fn event_text_cannot_notify_the_channel_and_a_bot_token_posts_to_announce_channel() {
    let twilio = FakeTwilio::start(&[]);
    twilio.outcomes(&[Outcome::Answered]);
    let slack = FakeSlack::start();
    let sb = sandbox(json!({"mode": "sequential", "announce_channel": slack::ALERTS, "announce_api_url": slack.api_url()}));
    let mut cmd = sb.command(&[
        "--api-url",
        &twilio.url,
        "--timeout",
        "60s",
        "--from",
        "cli",
        "--entity",
        "<!channel>",
        "--check",
        "disk&<@U01ALICE01>",
        "--status",
        "critical",
        "--output",
        "<!here> full",
    ]);
    cmd.env("SLACK_BOT_TOKEN", slack::BOT_TOKEN);
    let r = run_command(cmd, b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    slack.assert_no_violations();
    let posts = slack.calls_to("chat.postMessage");
    assert_eq!(posts.len(), 1, "{posts:?}");
    let alerts = slack.channel(slack::ALERTS);
    assert_eq!(alerts.messages.len(), 1);
    let m = &alerts.messages[0];
    assert!(m.markup.mentions.is_empty() && m.markup.tokens.is_empty() && m.markup.bare_ampersands == 0, "{:?}", m.markup);
    assert_eq!(
        without_times(&m.text),
        "Alice (+14•••••0101) answered the call for &lt;!channel&gt;/disk&amp;&lt;@U01ALICE01&gt; (critical) after Ns."
    );
    assert!(!r.stderr.contains(slack::BOT_TOKEN), "{}", r.stderr);
}

/// A host whose name is the URL of an image: the announcement links it as Slack links any
/// URL, but unfurls nothing (as handler-slack's messages), in a webhook post or in
/// chat.postMessage. Before, Slack's default unfurled media links: the image the monitored
/// host chose was shown in the channel.
#[test]
fn a_host_named_after_an_image_url_shows_no_image_in_the_announcement() {
    for webhook in [true, false] {
        let twilio = FakeTwilio::start(&[]);
        let slack = FakeSlack::start();
        let sb = sandbox(if webhook {
            json!({"mode": "sequential", "announce_webhook": slack.webhook_url()})
        } else {
            json!({"mode": "sequential", "announce_channel": slack::ALERTS, "announce_api_url": slack.api_url()})
        });
        let mut ev: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
        ev["client"]["name"] = "https://images.example/cat.gif".into();
        let mut cmd = sb.command(&["--api-url", &twilio.url, "--timeout", "60s"]);
        cmd.env("SLACK_BOT_TOKEN", slack::BOT_TOKEN);
        let r = run_command(cmd, ev.to_string().as_bytes());
        assert_eq!(r.code, Some(0), "{r:?}");
        slack.assert_no_violations();
        let posts = slack.calls_to(if webhook { "webhook" } else { "chat.postMessage" });
        assert_eq!(posts.len(), 1, "{posts:?}\n{}", r.stderr);
        let args = &posts[0].args;
        assert!(args["text"].as_str().is_some_and(|t| t.contains("https://images.example/cat.gif")), "{args}");
        assert_eq!((&args["unfurl_links"], &args["unfurl_media"]), (&json!(false), &json!(false)), "{args}");
    }
}

/// A check that sets two settings which only work together (its own Slack channel and the bot
/// token to post there): overrides are checked one at a time, and `announce_channel` alone (no
/// token in the operator's settings) was refused as invalid before the token was laid over, so
/// the check's announcement went nowhere. Now it is tried again once the token is in.
#[test]
fn a_check_setting_its_own_announce_channel_and_token_together_gets_the_announcement() {
    let twilio = FakeTwilio::start(&[]);
    twilio.outcomes(&[Outcome::Answered]);
    let slack = FakeSlack::start();
    let sb = sandbox(json!({"mode": "sequential", "announce_api_url": slack.api_url()}));
    let mut event: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).expect("fixture JSON");
    event["check"]["metadata"]["annotations"] =
        json!({"pagerpipe/twilio.announce_channel": slack::ALERTS, "pagerpipe/twilio.announce_token": slack::BOT_TOKEN});
    let r = run(&sb, &twilio, event.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("ignored"), "{}", r.stderr);
    slack.assert_no_violations();
    let alerts = slack.channel(slack::ALERTS);
    assert_eq!(alerts.messages.len(), 1, "{}", r.stderr);
    assert!(alerts.messages[0].text.starts_with("Alice (+14•••••0101) answered the call for "), "{}", alerts.messages[0].text);
}

#[test]
fn announce_channel_without_a_token_is_a_configuration_error() {
    let twilio = FakeTwilio::start(&[]);
    let sb = sandbox(json!({"announce_channel": "C0ALERTS01"}));
    let r = run(&sb, &twilio, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("announce_channel` needs a Slack bot token"), "{}", r.stderr);
    assert!(twilio.calls().is_empty());
}

#[test]
fn a_monitored_host_cannot_choose_where_the_announcement_goes() {
    let twilio = FakeTwilio::start(&[]);
    twilio.outcomes(&[Outcome::Answered]);
    let slack = FakeSlack::start();
    let sb = sandbox(json!({"mode": "sequential"}));
    let mut event: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).expect("fixture JSON");
    event["entity"]["metadata"]["annotations"] = json!({"pagerpipe/twilio.announce_webhook": slack.webhook_url()});
    let r = run(&sb, &twilio, event.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("twilio.announce_webhook"), "the refusal is logged: {}", r.stderr);
    assert!(slack.calls().is_empty(), "{:?}", slack.calls());
    // Nor may a check: the webhook is a URL, where requests go (tests/redteam.rs says why).
    let mut event: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).expect("fixture JSON");
    event["check"]["metadata"]["name"] = json!("check-other");
    event["check"]["metadata"]["annotations"] = json!({"pagerpipe/twilio.announce_webhook": slack.webhook_url()});
    let r = run(&sb, &twilio, event.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("event override `twilio.announce_webhook` ignored: set by a check annotation"), "{}", r.stderr);
    assert!(slack.calls().is_empty(), "{:?}", slack.calls());
    // The operator's webhook gets it.
    let sb = sandbox(json!({"mode": "sequential", "announce_webhook": slack.webhook_url()}));
    event["check"]["metadata"]["name"] = json!("check-third");
    let r = run(&sb, &twilio, event.to_string().as_bytes(), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(announced(&slack).len(), 1);
}

#[test]
fn a_war_room_handler_slack_keeps_open_for_the_incident_gets_the_announcement_in_its_thread() {
    let twilio = FakeTwilio::start(&[]);
    twilio.outcomes(&[Outcome::NoAnswer, Outcome::Answered]);
    let slack = FakeSlack::start();
    // announce_channel is there too: the war room wins while it is open.
    let sb = sandbox(json!({"mode": "sequential", "announce_api_url": slack.api_url(), "announce_channel": slack::ALERTS}));
    sb.config("slack.json", &json!({"slack": {"token": slack::BOT_TOKEN}}));
    let event = read_fixture("sensu/create.json");
    let r = run_command(sb.command_for(env!("CARGO_BIN_EXE_handler-slack"), &["--api-url", &slack.api_url()]), &event);
    assert_eq!(r.code, Some(0), "handler-slack opens the war room: {r:?}");
    let rooms = slack.created();
    assert_eq!(rooms.len(), 1);
    let alert_ts = rooms[0].roots()[0].ts.clone();

    let mut cmd = sb.command(&["--api-url", &twilio.url, "--timeout", "60s"]);
    cmd.env("SLACK_BOT_TOKEN", slack::BOT_TOKEN);
    let r = run_command(cmd, &event);
    assert_eq!(r.code, Some(0), "{r:?}");
    slack.assert_no_violations();
    assert!(r.stderr.contains(&format!("twilio: announced web-01/check_disk to its war room {}", rooms[0].id)), "{}", r.stderr);
    let room = slack.channel(&rooms[0].id);
    let replies = room.replies(&alert_ts);
    assert_eq!(replies.len(), 1, "{:?}", room.messages);
    assert!(replies[0].reply_broadcast, "also shown in the channel");
    assert_eq!(without_times(&replies[0].text), "Bob (+14•••••0102) answered the call for web-01/check_disk (critical) after Ns.");
    assert!(slack.channel(slack::ALERTS).messages.is_empty(), "not posted twice");
    assert!(!r.stderr.contains(slack::BOT_TOKEN), "{}", r.stderr);

    // An incident handler-slack has no war room for: announced in announce_channel.
    let mut again: Value = serde_json::from_slice(&event).expect("fixture JSON");
    again["check"]["name"] = json!("check_cpu");
    let mut cmd = sb.command(&["--api-url", &twilio.url, "--timeout", "60s"]);
    cmd.env("SLACK_BOT_TOKEN", slack::BOT_TOKEN);
    let r = run_command(cmd, again.to_string().as_bytes());
    assert_eq!(r.code, Some(0), "{r:?}");
    let alerts = slack.channel(slack::ALERTS);
    assert_eq!(alerts.messages.len(), 1, "{:?}", alerts.messages);
    assert!(alerts.messages[0].text.contains("answered the call for web-01/check_cpu"), "{}", alerts.messages[0].text);
}

#[test]
fn on_a_shared_redis_state_store_the_war_room_is_found_too() {
    let Some(redis) = crate::util::RedisServer::start() else { return };
    let twilio = FakeTwilio::start(&[]);
    twilio.outcomes(&[Outcome::Answered]);
    let slack = FakeSlack::start();
    let sb = sandbox(json!({"mode": "sequential", "announce_api_url": slack.api_url()}));
    sb.config("slack.json", &json!({"slack": {"token": slack::BOT_TOKEN}}));
    let event = read_fixture("sensu/create.json");
    let api = slack.api_url();
    let r = run_command(sb.command_for(env!("CARGO_BIN_EXE_handler-slack"), &["--api-url", &api, "--state-store", &redis.url]), &event);
    assert_eq!(r.code, Some(0), "handler-slack opens the war room: {r:?}");
    let rooms = slack.created();
    assert_eq!(rooms.len(), 1);
    // Nothing in the file store: only the shared Redis knows the war room.
    assert!(!sb.state_dir().join("slack").join("web-01%2Fcheck_disk.json").exists());

    let mut cmd = sb.command(&["--api-url", &twilio.url, "--timeout", "60s", "--state-store", &redis.url]);
    cmd.env("SLACK_BOT_TOKEN", slack::BOT_TOKEN);
    let r = run_command(cmd, &event);
    assert_eq!(r.code, Some(0), "{r:?}");
    slack.assert_no_violations();
    assert!(r.stderr.contains(&format!("twilio: announced web-01/check_disk to its war room {}", rooms[0].id)), "{}", r.stderr);
    let room = slack.channel(&rooms[0].id);
    assert_eq!(room.replies(&room.roots()[0].ts).len(), 1, "{:?}", room.messages);
    assert!(!r.stderr.contains(&redis.password), "{}", r.stderr);
}

#[test]
fn the_webhook_url_can_be_kept_in_a_file_of_its_own() {
    let twilio = FakeTwilio::start(&[]);
    twilio.outcomes(&[Outcome::Answered]);
    let slack = FakeSlack::start();
    let sb = Sandbox::new(BIN);
    let file = sb.dir.path().join("announce_webhook");
    std::fs::write(&file, format!("{}\n", slack.webhook_url())).expect("write");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    sb.config("twilio.json", &settings(json!({"mode": "sequential", "announce_webhook_file": file})));
    let r = run(&sb, &twilio, &read_fixture("sensu/create.json"), &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(announced(&slack).len(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains(slack::WEBHOOK_SECRET), "{}", r.stderr);
}
