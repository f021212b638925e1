//! handler-slack end to end: events in, a war room in the fake Slack out; every request checked
//! by the fake against `../shared/specs/slack-web-api.md`.

use serde_json::{Value, json};

use crate::fake::slack::{ALERTS, ALL_SCOPES, BOT_TOKEN, FakeSlack, Fault, USERS, summary};
use crate::util::{REFUSED_URL, Run, Sandbox, fixture_at, laid_over, nagios_ack, nagios_critical, read_fixture, run_command};

const BIN: &str = env!("CARGO_BIN_EXE_handler-slack");
/// 2026-12-01 01:00 UTC: the clock every run sees (`PAGERPIPE_NOW`), so names carry 20261201.
const NOW: u64 = 1_796_086_800;
const WAR_ROOM: &str = "inc-20261201-web-01-check_disk";
const STATE: &str = "web-01%2Fcheck_disk.json";

fn sandbox(extra: Value) -> Sandbox {
    let sb = Sandbox::new(BIN);
    let section = json!({"token": BOT_TOKEN, "responders": [USERS[0], USERS[1]]});
    let section = laid_over(section, extra);
    sb.config("slack.json", &json!({ "slack": section }));
    sb
}

/// Run `input` with the clock `minutes` after [`NOW`].
fn run_at(sb: &Sandbox, fake: &FakeSlack, input: &[u8], minutes: u64, extra: &[&str]) -> Run {
    let url = fake.api_url();
    let mut args = vec!["--api-url", url.as_str()];
    args.extend_from_slice(extra);
    let mut cmd = sb.command(&args);
    cmd.env("PAGERPIPE_NOW", (NOW + minutes * 60).to_string());
    run_command(cmd, input)
}

fn run(sb: &Sandbox, fake: &FakeSlack, input: &[u8]) -> Run {
    run_at(sb, fake, input, 0, &[])
}

/// A Sensu 1.x event for `entity`/`check` with `status` and `output`.
fn event(entity: &str, check: &str, status: u32, output: &str) -> Vec<u8> {
    let action = if status == 0 { "resolve" } else { "create" };
    json!({"action": action, "occurrences": 1, "client": {"name": entity},
           "check": {"name": check, "status": status, "output": output, "interval": 60}})
    .to_string()
    .into_bytes()
}

fn ok(r: &Run) {
    assert_eq!(r.code, Some(0), "{r:?}");
}

#[test]
fn a_failure_opens_one_war_room_invites_the_responders_and_posts_the_alert() {
    let fake = FakeSlack::start();
    let sb = sandbox(
        json!({"responders": [USERS[0], USERS[1], "U9NOBODY9"], "link_template": "https://sensu.example.com/events/{entity}/{check}"}),
    );
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"));
    ok(&r);
    assert!(r.stderr.contains("responder U9NOBODY9 was not invited: user_not_found"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("slack: triggered web-01/check_disk (created #{WAR_ROOM} ")), "{}", r.stderr);
    fake.assert_no_violations();
    let created = fake.created();
    assert_eq!(created.len(), 1, "{:?}", summary(&fake.calls()));
    let room = &created[0];
    assert_eq!(room.name, WAR_ROOM);
    assert!(!room.is_private);
    assert_eq!(
        room.topic,
        "CRITICAL web-01/check_disk: CheckDisk CRITICAL: / 95.2% used (45G of 47G) | https://sensu.example.com/events/web-01/check_disk"
    );
    for u in [USERS[0], USERS[1]] {
        assert!(room.members.iter().any(|m| m == u), "{u} invited: {:?}", room.members);
    }
    let roots = room.roots();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0].text, ":red_circle: CRITICAL web-01/check_disk: CheckDisk CRITICAL: / 95.2% used (45G of 47G)");
    assert_eq!(roots[0].blocks[0]["text"]["text"], ":red_circle: CRITICAL web-01/check_disk");
    assert!(roots[0].markup.mentions.is_empty());
    // The order of the calls, as the spec's summary (§8) has it.
    let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, ["conversations.create", "conversations.setTopic", "conversations.invite", "chat.postMessage"]);
    let st = sb.state("slack", STATE);
    assert_eq!(st["open"], true);
    assert_eq!(st["refs"]["channel_id"], room.id.as_str());
    assert_eq!(st["refs"]["channel_name"], WAR_ROOM);
    assert_eq!(st["refs"]["ts"], roots[0].ts.as_str());

    // Inside refresh: nothing at all.
    let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 5, &[]);
    ok(&r);
    assert!(r.stderr.contains("already notified"), "{}", r.stderr);
    assert_eq!(fake.calls().len(), 4);
}

#[test]
fn names_are_valid_for_japanese_and_200_character_check_names_and_distinct() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    let long_a = format!("{}-a", "check_very_long_name".repeat(10));
    let long_b = format!("{}-b", "check_very_long_name".repeat(10));
    assert_eq!(long_a.chars().count(), 202);
    for (entity, check) in [
        ("db-tokyo-01", "ディスク容量"),
        ("db-tokyo-01", "ディスク残量"),
        ("web-01", long_a.as_str()),
        ("web-01", long_b.as_str()),
        ("Web01.Example.COM", "Check HTTP!"),
    ] {
        let r = run(&sb, &fake, &event(entity, check, 2, "fail"));
        ok(&r);
    }
    // The fake refuses every name that breaks Slack's rules (and records it).
    fake.assert_no_violations();
    let names: Vec<String> = fake.created().into_iter().map(|c| c.name).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(names[0].starts_with("inc-20261201-db-tokyo-01-deisuku"), "{names:?}");
    assert_ne!(names[0], names[1]);
    assert!(names[2].len() <= 80 && names[3].len() <= 80, "{names:?}");
    assert_ne!(names[2], names[3]);
    assert_eq!(names[4], "inc-20261201-web01-example-com-check-http");
    assert!(fake.calls_to("conversations.create").iter().all(|c| c.ok()), "no name was refused");
}

#[test]
fn a_taken_name_gets_a_suffix() {
    let fake = FakeSlack::start();
    fake.add_channel(WAR_ROOM, false);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"));
    ok(&r);
    assert!(r.stderr.contains(&format!("#{WAR_ROOM} is taken; trying #{WAR_ROOM}-2")), "{}", r.stderr);
    assert_eq!(fake.created().iter().map(|c| c.name.clone()).collect::<Vec<_>>(), vec![format!("{WAR_ROOM}-2")]);
    // The taken name was looked up first: not a channel this war room made (older, no bot).
    assert_eq!(fake.calls_to("conversations.list").len(), 1);
    fake.assert_no_violations();
}

#[test]
fn a_create_whose_answer_was_lost_is_found_not_made_twice() {
    let fake = FakeSlack::start();
    fake.set_clock(NOW);
    // Slack creates the channel, and its answer never arrives.
    fake.fail("conversations.create", &[Fault::Lost]);
    let sb = sandbox(json!({}));
    let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 0, &["--timeout", "3s"]);
    match r.code {
        // Tried again within the deadline: name_taken, and the lookup finds the channel.
        Some(0) => assert!(r.stderr.contains(&format!("#{WAR_ROOM} was created by an attempt whose answer was lost")), "{}", r.stderr),
        // Spooled with its fate unknown: the flush looks it up before creating it again.
        Some(75) => {
            let flush = run_at(&sb, &fake, b"", 1, &["--flush"]);
            ok(&flush);
            assert!(flush.stderr.contains("had acted on it after all"), "{}", flush.stderr);
        }
        _ => panic!("{r:?}"),
    }
    fake.assert_no_violations();
    let rooms = fake.created();
    assert_eq!(rooms.len(), 1, "one war room: {:?}", rooms.iter().map(|c| &c.name).collect::<Vec<_>>());
    assert_eq!(rooms[0].name, WAR_ROOM);
    assert_eq!(rooms[0].roots().len(), 1, "the alert is posted into it");
    assert!(!rooms[0].topic.is_empty());
    assert!(!fake.calls_to("conversations.list").is_empty());
    assert_eq!(sb.state("slack", STATE)["refs"]["channel_id"], rooms[0].id.as_str());
}

/// A failure whose `conversations.create` Slack acted on but whose answer was lost: the war
/// room exists, the handler spooled the create with its fate unknown (exit 75). The fake (its clock at [`NOW`]) and the sandbox.
fn lost_create() -> (FakeSlack, Sandbox) {
    let fake = FakeSlack::start();
    fake.set_clock(NOW);
    let sb = lost_create_on(&fake);
    (fake, sb)
}

/// [`lost_create`] on a fake set up beforehand (channels added, its clock set).
fn lost_create_on(fake: &FakeSlack) -> Sandbox {
    fake.fail("conversations.create", &[Fault::Lost]);
    let sb = sandbox(json!({}));
    let r = run_at(&sb, fake, &read_fixture("sensu/create.json"), 0, &["--timeout", "3s"]);
    assert_eq!(r.code, Some(75), "spooled with its fate unknown: {r:?}");
    sb
}

/// A flush that found the war room a lost create made ([`lost_create`]): exit 0, and the
/// alert posted in that one room.
fn found_after_all(fake: &FakeSlack, flush: &Run) {
    ok(flush);
    assert!(flush.stderr.contains("had acted on it after all"), "{}", flush.stderr);
    let rooms = fake.created();
    assert_eq!(rooms.len(), 1, "one war room");
    assert_eq!(rooms[0].roots().len(), 1, "the alert is posted into it: {}", flush.stderr);
    fake.assert_no_violations();
}

#[test]
fn a_lost_create_is_found_on_a_later_page_of_conversations_list() {
    // §5.8: loop until `next_cursor` is empty. With a thousand channels before it, the war room
    // a lost create made is on the second page of conversations.list (limit 999). Reading the
    // first page only, the flush created it again, got name_taken and refused the page.
    let fake = FakeSlack::start();
    fake.set_clock(NOW);
    for i in 0..1000 {
        fake.add_channel(&format!("old-{i}"), i % 2 == 0);
    }
    let sb = lost_create_on(&fake);
    let flush = run_at(&sb, &fake, b"", 1, &["--flush"]);
    ok(&flush);
    assert!(flush.stderr.contains("had acted on it after all"), "{}", flush.stderr);
    fake.assert_no_violations();
    let lists = fake.calls_to("conversations.list");
    assert!(lists.len() >= 2, "every page read: {}", lists.len());
    let rooms = fake.created();
    assert_eq!(rooms.len(), 1, "one war room");
    assert_eq!(rooms[0].roots().len(), 1, "the alert is posted into it");
    assert_eq!(sb.state("slack", STATE)["refs"]["channel_id"], rooms[0].id.as_str());
}

#[test]
fn the_lookup_of_a_lost_create_stops_at_the_page_that_holds_it() {
    // A channel name is unique: once a page holds the war room, the pages after it are only
    // more requests of the flush's deadline and of Slack's rate limit (Tier 2).
    let (fake, sb) = lost_create();
    for i in 0..2000 {
        fake.add_channel(&format!("later-{i}"), i % 2 == 0);
    }
    let before = fake.calls_to("conversations.list").len();
    let flush = run_at(&sb, &fake, b"", 1, &["--flush"]);
    ok(&flush);
    assert!(flush.stderr.contains("had acted on it after all"), "{}", flush.stderr);
    assert_eq!(fake.calls_to("conversations.list").len() - before, 1, "the first page holds it");
    assert_eq!(fake.created().len(), 1, "one war room");
    fake.assert_no_violations();
}

#[test]
fn an_error_page_in_the_lookup_of_a_lost_create_is_asked_again_not_taken_for_no_room() {
    // conversations.list answering an error (`internal_error`, HTTP 200) says nothing of the
    // war room: read as "not there", the create went again, met name_taken, and the page was
    // refused (exit 69, the war room left without its alert).
    let (fake, sb) = lost_create();
    fake.fail("conversations.list", &[Fault::Error("internal_error")]);
    let flush = run_at(&sb, &fake, b"", 1, &["--flush"]);
    found_after_all(&fake, &flush);
}

#[test]
fn a_lookup_the_token_may_not_make_keeps_the_lost_create_and_names_the_scope() {
    // A bot token without channels:read gets `missing_scope` from conversations.list on every
    // ask. It was asked four times and "cannot tell" sent the create again: name_taken, the
    // page refused (exit 69) and the war room left without its alert. Then it was kept with
    // exit 75, every flush, as if Slack were down, until spool_max_age gave it up.
    let (fake, sb) = lost_create();
    fake.set_scopes(&["channels:manage", "chat:write"]);
    let flush = run_at(&sb, &fake, b"", 1, &["--flush"]);
    // Kept, exit 78 (the settings need fixing), and the line says what to fix.
    assert_eq!(flush.code, Some(78), "{flush:?}");
    assert!(flush.stderr.contains("needs the scope channels:read"), "{}", flush.stderr);
    assert!(flush.stderr.contains("not sent again until it can be looked up"), "{}", flush.stderr);
    assert_eq!(fake.calls_to("conversations.list").len(), 1, "asked once: the answer will not change");
    assert!(fake.calls_to("conversations.create").iter().all(|c| c.status == 0), "the create is not sent again");
    // With the scope granted, the next flush finds the war room and posts the alert in it.
    fake.set_scopes(&ALL_SCOPES);
    let flush = run_at(&sb, &fake, b"", 2, &["--flush"]);
    found_after_all(&fake, &flush);
}

#[test]
fn a_lookup_the_token_may_not_make_holds_back_its_own_incident_only() {
    // Another incident's war room, spooled while Slack was unreachable, opens in the same flush
    // (the flush used to stop at the first entry it could not look up).
    let (fake, sb) = lost_create();
    let down = format!("{REFUSED_URL}/api");
    let mut cmd = sb.command(&["--api-url", down.as_str(), "--timeout", "1s"]);
    cmd.env("PAGERPIPE_NOW", (NOW + 60).to_string());
    let r = run_command(cmd, &event("db-02", "check_mem", 2, "MEM CRITICAL"));
    assert_eq!(r.code, Some(75), "{r:?}");
    fake.set_scopes(&["channels:manage", "channels:write.topic", "channels:write.invites", "chat:write"]);
    let flush = run_at(&sb, &fake, b"", 2, &["--flush"]);
    assert_eq!(flush.code, Some(78), "web-01's entries are kept, for the token to be fixed: {flush:?}");
    assert!(flush.stderr.contains("needs the scope channels:read"), "{}", flush.stderr);
    let rooms = fake.created();
    assert_eq!(rooms.len(), 2, "web-01's (made by the lost create) and db-02's: {}", flush.stderr);
    let db = rooms.iter().find(|r| r.name.contains("db-02")).expect("db-02's war room");
    assert_eq!(db.roots().len(), 1, "its alert is posted: {}", flush.stderr);
    fake.assert_no_violations();
}

/// conversations.list refused for good with Slack's own answer: a token of a type that may not
/// list (`not_allowed_token_type`), one refused (`invalid_auth`), a request Slack will not take
/// (`invalid_arguments`). Before, each was taken for no usable answer: asked four times, then
/// kept with exit 75 on every flush, as if Slack were down, until spool_max_age gave the war
/// room up, and nobody was told to fix the settings. Now: exit 78, one line with Slack's code,
/// the create kept with its fate unknown (never sent again blind: a second war room), asked
/// once; and once the lookup is allowed, the flush finds the room the lost create made.
#[test]
fn a_lookup_slack_refuses_for_good_exits_78_and_keeps_the_create_until_it_can_be_looked_up() {
    for code in ["not_allowed_token_type", "invalid_auth", "invalid_arguments"] {
        let (fake, sb) = lost_create();
        let spooled = sb.spooled("slack");
        fake.fail("conversations.list", &vec![Fault::Error(code); 8]);
        let flush = run_at(&sb, &fake, b"", 1, &["--flush"]);
        assert_eq!(flush.code, Some(78), "{code}: {flush:?}");
        let line = format!("the service refused its lookup (conversations.list answered {code}");
        assert!(flush.stderr.contains(&line), "{code}: {}", flush.stderr);
        assert!(flush.stderr.contains("kept spooled with its fate unknown, not sent again until it can be looked up"), "{}", flush.stderr);
        assert!(!flush.stderr.contains(BOT_TOKEN), "{}", flush.stderr);
        assert_eq!(fake.calls_to("conversations.list").len(), 1, "{code}: asked once, the answer will not change");
        assert_eq!(fake.calls_to("conversations.create").len(), 1, "{code}: not created again: {}", flush.stderr);
        assert_eq!(sb.spooled("slack"), spooled, "{code}: all kept");
        assert!(sb.failed("slack").is_empty(), "{code}");
        fake.heal("conversations.list");
        let flush = run_at(&sb, &fake, b"", 2, &["--flush"]);
        found_after_all(&fake, &flush);
        assert!(sb.spooled("slack").is_empty(), "{code}: {}", flush.stderr);
    }
}

/// The incident's next event meets the same refusal in its own flush (the spooled create of
/// unknown fate goes first): it is queued behind it and exits 78 (75 before), naming the
/// refusal; nothing is created twice, and once the scope is granted a flush finds the war room,
/// posts the alert in it, then the recovery.
#[test]
fn an_event_queued_behind_a_lookup_slack_refuses_exits_78() {
    let (fake, sb) = lost_create();
    fake.set_scopes(&["channels:manage", "channels:write.topic", "channels:write.invites", "chat:write"]);
    let spooled = sb.spooled("slack").len();
    let r = run_at(&sb, &fake, &read_fixture("sensu/resolve.json"), 1, &[]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("the service refused its lookup (conversations.list answered missing_scope"), "{}", r.stderr);
    assert!(r.stderr.contains("needs the scope channels:read"), "{}", r.stderr);
    assert!(r.stderr.contains("it waits behind a request that only a fix of the settings lets go out"), "{}", r.stderr);
    assert_eq!(sb.spooled("slack").len(), spooled + 1, "the recovery queued behind: {}", r.stderr);
    assert_eq!(fake.calls_to("conversations.create").len(), 1, "not created again: {}", r.stderr);
    assert!(fake.calls_to("chat.postMessage").is_empty(), "{}", r.stderr);
    fake.set_scopes(&ALL_SCOPES);
    let flush = run_at(&sb, &fake, b"", 2, &["--flush"]);
    ok(&flush);
    assert!(flush.stderr.contains("had acted on it after all"), "{}", flush.stderr);
    let rooms = fake.created();
    assert_eq!(rooms.len(), 1, "one war room: {}", flush.stderr);
    assert_eq!(fake.calls_to("chat.postMessage").len(), 2, "the alert, then the recovery: {}", flush.stderr);
    assert!(sb.spooled("slack").is_empty(), "{}", flush.stderr);
    assert_eq!(sb.state("slack", STATE)["open"], false);
    fake.assert_no_violations();
}

#[test]
fn a_lost_create_is_found_with_the_scopes_the_docs_ask_for_a_public_war_room() {
    // docs/slack.md asks for groups:read only for private war rooms; a lookup that asked for
    // private channels too was refused for it (missing_scope) on every public war room.
    let (fake, sb) = lost_create();
    fake.set_scopes(&["channels:manage", "channels:write.topic", "channels:write.invites", "chat:write", "channels:read"]);
    let flush = run_at(&sb, &fake, b"", 1, &["--flush"]);
    found_after_all(&fake, &flush);
}

/// A failure whose war room's name an earlier attempt took (the channel made just now, the
/// bot in it) uses that channel: no second room, the alert posted in it. The sandbox and the
/// channel's ID.
fn taken_room_is_used(fake: &FakeSlack) -> (Sandbox, String) {
    let made = fake.add_channel_created(WAR_ROOM, true, NOW);
    let sb = sandbox(json!({}));
    let r = run(&sb, fake, &read_fixture("sensu/create.json"));
    ok(&r);
    assert!(r.stderr.contains(&format!("#{WAR_ROOM} was created by an attempt whose answer was lost")), "{}", r.stderr);
    assert!(fake.created().is_empty(), "no second war room");
    assert_eq!(fake.channel(&made).roots().len(), 1);
    (sb, made)
}

#[test]
fn a_taken_name_made_by_this_war_rooms_lost_attempt_is_used() {
    let fake = FakeSlack::start();
    // The channel exists with the bot in it, created just now: an earlier attempt's (e.g. on
    // another host sharing the ledger) whose answer never came.
    let (sb, made) = taken_room_is_used(&fake);
    assert!(!fake.channel(&made).topic.is_empty());
    assert_eq!(sb.state("slack", STATE)["refs"]["channel_id"], made.as_str());
    fake.assert_no_violations();
}

#[test]
fn a_taken_name_is_found_in_a_workspace_of_a_thousand_channels() {
    // The war room an earlier attempt made, after a thousand other channels: a page of
    // conversations.list (limit 999) is far over 64 KiB, and was cut there, so it read as no
    // JSON: the lookup failed and a second war room (`-2`) was made.
    let fake = FakeSlack::start();
    for i in 0..1000 {
        fake.add_channel(&format!("old-{i}"), true);
    }
    taken_room_is_used(&fake);
    fake.assert_no_violations();
}

#[test]
fn a_repeat_after_refresh_is_threaded_and_a_severity_change_also_broadcast() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    ok(&run(&sb, &fake, &event("web-01", "check_disk", 2, "DISK CRITICAL 95%")));
    let r = run_at(&sb, &fake, &event("web-01", "check_disk", 2, "DISK CRITICAL 96%"), 31, &[]);
    ok(&r);
    assert!(r.stderr.contains("update posted in the thread of #"), "{}", r.stderr);
    let r = run_at(&sb, &fake, &event("web-01", "check_disk", 1, "DISK WARNING 85%"), 32, &[]);
    ok(&r);
    fake.assert_no_violations();
    let rooms = fake.created();
    assert_eq!(rooms.len(), 1, "no second war room");
    let room = &rooms[0];
    let root = room.roots()[0].ts.clone();
    assert_eq!(room.roots().len(), 1);
    let replies = room.replies(&root);
    assert_eq!(replies.len(), 2);
    assert!(replies[0].text.contains("still CRITICAL web-01/check_disk: DISK CRITICAL 96%"), "{}", replies[0].text);
    assert!(!replies[0].reply_broadcast);
    assert!(replies[1].text.contains("CRITICAL → WARNING web-01/check_disk: DISK WARNING 85%"), "{}", replies[1].text);
    assert!(replies[1].reply_broadcast, "a severity change is also shown in the channel");
    assert_eq!(sb.state("slack", STATE)["count"], 3);
}

#[test]
fn the_recovery_is_posted_in_thread_and_channel_and_archived_when_asked() {
    for archive in [false, true] {
        let fake = FakeSlack::start();
        let sb = sandbox(json!({"archive_on_resolve": archive}));
        ok(&run(&sb, &fake, &read_fixture("sensu/create.json")));
        let r = run_at(&sb, &fake, &read_fixture("sensu/resolve.json"), 3, &[]);
        ok(&r);
        assert!(r.stderr.contains("recovery posted in the thread and the channel of #"), "{}", r.stderr);
        fake.assert_no_violations();
        let room = &fake.created()[0];
        let replies = room.replies(&room.roots()[0].ts);
        assert_eq!(replies.len(), 1);
        assert!(replies[0].reply_broadcast);
        assert_eq!(replies[0].text, ":large_green_circle: RECOVERED web-01/check_disk: CheckDisk OK: / 61.0% used");
        assert_eq!(room.is_archived, archive, "archive_on_resolve {archive}");
        assert_eq!(fake.calls_to("conversations.archive").len(), usize::from(archive));
        assert_eq!(sb.state("slack", STATE)["open"], false);
        // The next failure (a later check run) opens a new war room (the old name is taken, so
        // it is suffixed).
        ok(&run_at(&sb, &fake, &fixture_at("sensu/create.json", 1_900_000_000), 10, &[]));
        let names: Vec<String> = fake.created().into_iter().map(|c| c.name).collect();
        assert_eq!(names, vec![WAR_ROOM.to_string(), format!("{WAR_ROOM}-2")]);
        // Straight to the next name: the record says which one the last war room had.
        assert!(fake.calls_to("conversations.create").iter().all(|c| c.ok()));
    }
}

/// Slack's answer to `chat.postMessage` echoes the message, blocks and all, and may write every
/// character outside ASCII as `\uXXXX`: an alert whose output is emoji or CJK text is answered
/// in over 64 KiB. The answer is read whole, so the alert's `ts` is kept and the recovery
/// threads under it.
#[test]
fn an_alert_answered_in_over_64_kib_is_read_and_its_recovery_threads_under_it() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({"channel": ALERTS}));
    let r = run(&sb, &fake, &event("web-01", "check_disk", 2, &"\u{1F525}".repeat(12_000)));
    ok(&r);
    fake.assert_no_violations();
    let answer = fake.calls_to("chat.postMessage")[0].answer.to_string();
    let escaped: usize = answer.chars().map(|c| if c.is_ascii() { 1 } else { 6 * c.len_utf16() }).sum();
    assert!(escaped > 64 * 1024, "the answer is {escaped} bytes: the test needs one over 64 KiB");
    let alerts = fake.channel(ALERTS);
    assert_eq!(sb.state("slack", STATE)["refs"]["ts"], alerts.roots()[0].ts.as_str(), "{}", r.stderr);
    ok(&run_at(&sb, &fake, &event("web-01", "check_disk", 0, "OK"), 2, &[]));
    let alerts = fake.channel(ALERTS);
    assert_eq!(alerts.roots().len(), 1, "the recovery is a reply, not a new message");
    assert_eq!(alerts.replies(&alerts.roots()[0].ts).len(), 1);
}

#[test]
fn an_acknowledge_is_a_thread_message() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    ok(&run(&sb, &fake, &read_fixture("sensu/create.json")));
    let url = fake.api_url();
    let mut cmd = sb.command(&["--api-url", &url, "--from", "nagios"]);
    nagios_ack(&mut cmd, "bob").env("PAGERPIPE_NOW", (NOW + 60).to_string());
    let r = run_command(cmd, b"");
    ok(&r);
    fake.assert_no_violations();
    let room = &fake.created()[0];
    let replies = room.replies(&room.roots()[0].ts);
    assert_eq!(replies.len(), 1);
    assert!(replies[0].text.starts_with(":eyes: acknowledged web-01/check_disk"), "{}", replies[0].text);
    assert!(!replies[0].reply_broadcast);
}

/// An acknowledgement covers the notifications before it: Nagios acknowledges, the problem is
/// re-notified once `refresh` has passed (after an unacknowledge in Zabbix, or a severity
/// change), and the next acknowledgement is posted too, not skipped as "already
/// acknowledged". Before, the ledger kept the first acknowledgement for the whole open period,
/// and handler-twilio let a run started by the re-notification go on calling.
#[test]
fn an_acknowledge_after_a_re_notification_is_posted_again() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({"refresh": "10m"}));
    let url = fake.api_url();
    let nagios = |at: u64, ack: bool| {
        let mut cmd = sb.command(&["--api-url", &url, "--from", "nagios"]);
        cmd.env("PAGERPIPE_NOW", at.to_string());
        if ack {
            nagios_ack(&mut cmd, "bob");
        } else {
            nagios_critical(&mut cmd, "PROBLEM");
        }
        let r = run_command(cmd, b"");
        ok(&r);
        r
    };
    let acks = || {
        let room = &fake.created()[0];
        room.replies(&room.roots()[0].ts).into_iter().filter(|r| r.text.starts_with(":eyes: acknowledged")).count()
    };
    nagios(NOW, false);
    nagios(NOW + 60, true);
    assert_eq!(acks(), 1);
    // The same acknowledgement again before any new page: nothing new to acknowledge.
    let again = nagios(NOW + 90, true);
    assert!(again.stderr.contains("already acknowledged"), "{}", again.stderr);
    assert_eq!(acks(), 1);
    // Re-notified after refresh (10 minutes), then acknowledged again.
    nagios(NOW + 60 + 700, false);
    let second = nagios(NOW + 60 + 760, true);
    assert!(!second.stderr.contains("already acknowledged"), "{}", second.stderr);
    assert_eq!(acks(), 2, "{}", second.stderr);
    fake.assert_no_violations();
}

#[test]
fn nagios_custom_variables_set_slack_settings() {
    // `_SERVICESLACK_<SETTING>` is a check-level setting, as `_SERVICEPAGERDUTY_<SETTING>` is
    // for handler-pagerduty (README "Who may set what"), not a label.
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    let url = fake.api_url();
    let problem = |severities: &str| {
        let mut cmd = sb.command(&["--api-url", &url, "--from", "nagios"]);
        cmd.env("NAGIOS__SERVICESLACK_CHANNEL", ALERTS);
        nagios_critical(&mut cmd, "PROBLEM").env("NAGIOS__SERVICESLACK_SEVERITIES", severities).env("PAGERPIPE_NOW", NOW.to_string());
        run_command(cmd, b"")
    };
    let r = problem("warning");
    ok(&r);
    assert!(r.stderr.contains("skipped web-01/check_disk: severity critical is not in severities [warning]"), "{}", r.stderr);
    assert!(fake.calls().is_empty(), "nothing sent: {:?}", fake.calls().len());
    let r = problem("warning,critical");
    ok(&r);
    fake.assert_no_violations();
    // `_SERVICESLACK_CHANNEL`: posted to that existing channel, no war room opened.
    assert!(fake.created().is_empty(), "{}", r.stderr);
    assert_eq!(fake.channel(ALERTS).roots().len(), 1, "{}", r.stderr);
}

#[test]
fn output_cannot_notify_anyone() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({"link_template": "https://sensu.example.com/{entity}/{check}"}));
    let hostile = "<!channel> disk full, ask <@U01ALICE01> & <!subteam^S123|@oncall> <https://evil.example|click> <!here> <!everyone>";
    let r = run(&sb, &fake, &event("web-01 <!here>", "check_disk|<!channel>", 2, hostile));
    ok(&r);
    ok(&run_at(&sb, &fake, &event("web-01 <!here>", "check_disk|<!channel>", 0, hostile), 1, &[]));
    fake.assert_no_violations();
    let room = &fake.created()[0];
    assert_eq!(room.messages.len(), 2);
    for m in &room.messages {
        assert!(m.markup.mentions.is_empty(), "{:?} in {}", m.markup.mentions, m.text);
        assert!(m.markup.tokens.iter().all(|t| t.starts_with("<https://sensu.example.com/")), "{:?}", m.markup.tokens);
        assert_eq!(m.markup.bare_ampersands, 0, "{}", m.text);
        assert!(m.text.contains("&lt;!channel&gt; disk full, ask &lt;@U01ALICE01&gt; &amp;"), "{}", m.text);
    }
    assert!(!room.topic.contains('<'), "{}", room.topic);
    // The operator's own mention still works, once, on the alert.
    let fake = FakeSlack::start();
    let sb = sandbox(json!({"mention": "here"}));
    ok(&run(&sb, &fake, &event("web-01", "check_disk", 2, hostile)));
    let m = &fake.created()[0].messages[0];
    assert_eq!(m.markup.mentions, vec!["<!here>"]);
}

/// `link_template`'s placeholders are filled with host-written names: percent-encoded, a `#`,
/// `?`, `&` or `/` in them stays part of the name. Before, a check `Disk /var#top & more`
/// cut the link at `#` and added a parameter at `&`, and an entity `evil.example/login?` in
/// `https://{entity}.grafana.example/…` made the link `https://evil.example/login?.grafana…`.
#[test]
fn a_name_in_the_link_template_stays_a_name() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({"link_template": "https://{entity}.grafana.example/d/disk?var-check={check}&from=now-1h"}));
    ok(&run(&sb, &fake, &event("evil.example/login?", "Disk /var#top & more", 2, "full")));
    fake.assert_no_violations();
    let room = &fake.created()[0];
    let url = "https://evil.example%2Flogin%3F.grafana.example/d/disk?var-check=Disk%20%2Fvar%23top%20%26%20more&amp;from=now-1h";
    assert_eq!(room.messages[0].markup.tokens, vec![format!("<{url}|open in monitoring>")], "{}", room.messages[0].text);
    assert!(room.topic.contains(url), "{}", room.topic);
}

/// A name that is `..` (a Sensu Go entity may be called that) would be a dot segment in the
/// link, which a browser resolves, percent-encoded or not: `…/runbooks/..` is the site's
/// root. No link then, and the page still goes out.
#[test]
fn a_name_that_is_a_dot_segment_gets_no_link() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({"link_template": "https://wiki.example/runbooks/{check}/{entity}"}));
    let r = run(&sb, &fake, &event("..", "check_disk", 2, "full"));
    ok(&r);
    fake.assert_no_violations();
    let room = &fake.created()[0];
    assert!(room.messages[0].markup.tokens.is_empty(), "{}", room.messages[0].text);
    assert!(!room.topic.contains("wiki.example"), "{}", room.topic);
    assert!(r.stderr.contains("is `.` or `..`, which would move the link up a level; no link shown"), "{}", r.stderr);
}

#[test]
fn one_channel_mode_posts_to_the_existing_channel_and_threads_there() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({"channel": ALERTS, "archive_on_resolve": true}));
    ok(&run(&sb, &fake, &read_fixture("sensu/create.json")));
    let r = run_at(&sb, &fake, &read_fixture("sensu/resolve.json"), 2, &[]);
    ok(&r);
    fake.assert_no_violations();
    assert!(fake.created().is_empty(), "no channel created");
    assert!(fake.calls_to("conversations.invite").is_empty() && fake.calls_to("conversations.archive").is_empty());
    let alerts = fake.channel(ALERTS);
    assert!(!alerts.is_archived);
    assert_eq!(alerts.roots().len(), 1);
    assert_eq!(alerts.replies(&alerts.roots()[0].ts).len(), 1);
    assert_eq!(sb.state("slack", STATE)["refs"]["channel_id"], ALERTS);
}

#[test]
fn an_archived_war_room_is_replaced_on_the_next_update() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    ok(&run(&sb, &fake, &read_fixture("sensu/create.json")));
    let first = fake.created()[0].id.clone();
    fake.archive(&first);
    let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 31, &[]);
    ok(&r);
    assert!(r.stderr.contains("answered is_archived; opening a new one"), "{}", r.stderr);
    let rooms = fake.created();
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[1].name, format!("{WAR_ROOM}-2"));
    assert_eq!(rooms[1].roots().len(), 1);
    assert_eq!(sb.state("slack", STATE)["refs"]["channel_id"], rooms[1].id.as_str());
    fake.assert_no_violations();
}

#[test]
fn a_deleted_war_room_is_replaced_too() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    ok(&run(&sb, &fake, &read_fixture("sensu/create.json")));
    let first = fake.created()[0].id.clone();
    fake.delete(&first);
    ok(&run_at(&sb, &fake, &event("web-01", "check_disk", 1, "DISK WARNING"), 2, &[]));
    let posts = fake.calls_to("chat.postMessage");
    assert_eq!(posts[1].error(), Some("channel_not_found"));
    let rooms = fake.created();
    assert_eq!(rooms.len(), 1, "the deleted room is gone");
    assert_ne!(rooms[0].id, first);
    // A replacement never takes the old room's name (an archived one still holds it).
    assert_eq!(rooms[0].name, format!("{WAR_ROOM}-2"));
    fake.assert_no_violations();
}

/// §5.5: `not_in_channel` is the bot no longer a member. A member can remove the app from its
/// war room; every later post there is refused so. Before, the update was refused (exit 69)
/// and so was every later one and the recovery: the incident stayed open on a room nothing
/// can be posted to, and the check's pages went nowhere for good.
#[test]
fn a_war_room_the_bot_was_removed_from_is_replaced_on_the_next_update() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    ok(&run(&sb, &fake, &read_fixture("sensu/create.json")));
    let first = fake.created()[0].id.clone();
    fake.remove_bot(&first);
    let r = run_at(&sb, &fake, &event("web-01", "check_disk", 1, "DISK WARNING"), 2, &[]);
    ok(&r);
    assert!(r.stderr.contains("answered not_in_channel; opening a new one"), "{}", r.stderr);
    let rooms = fake.created();
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[1].name, format!("{WAR_ROOM}-2"));
    assert_eq!(rooms[1].roots().len(), 1, "the update is the new room's first message");
    assert_eq!(sb.state("slack", STATE)["refs"]["channel_id"], rooms[1].id.as_str());
    fake.assert_no_violations();
}

/// The recovery for a war room the bot was removed from closes the incident (nothing can be
/// posted there), as for an archived one: before, it exited 69 and the incident stayed open,
/// so the check's next failure was threaded into that room again and refused again.
#[test]
fn a_recovery_for_a_war_room_the_bot_was_removed_from_closes_the_incident() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    ok(&run(&sb, &fake, &read_fixture("sensu/create.json")));
    let first = fake.created()[0].id.clone();
    fake.remove_bot(&first);
    let r = run_at(&sb, &fake, &read_fixture("sensu/resolve.json"), 3, &[]);
    ok(&r);
    assert!(r.stderr.contains("not_in_channel"), "{}", r.stderr);
    assert_eq!(sb.state("slack", STATE)["open"], false);
    // The next failure opens a new war room, with its alert.
    ok(&run_at(&sb, &fake, &fixture_at("sensu/create.json", 1_900_000_000), 10, &[]));
    let rooms = fake.created();
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[1].roots().len(), 1);
    fake.assert_no_violations();
}

/// §5.5: `cannot_reply_to_message` (the alert takes no replies) and
/// `restricted_action_thread_locked` (its thread was locked) refuse the thread, not the
/// channel. Before, the update was refused (exit 69), and so was every later one and the
/// recovery: the incident stayed open and its pages went nowhere. Now the message goes to the
/// channel itself, and the recovery closes the incident.
#[test]
fn a_thread_that_takes_no_reply_gets_the_update_and_the_recovery_in_the_channel() {
    for code in ["cannot_reply_to_message", "restricted_action_thread_locked"] {
        let fake = FakeSlack::start();
        let sb = sandbox(json!({}));
        ok(&run(&sb, &fake, &read_fixture("sensu/create.json")));
        fake.fail("chat.postMessage", &[Fault::Error(code)]);
        let r = run_at(&sb, &fake, &event("web-01", "check_disk", 1, "DISK WARNING 85%"), 2, &[]);
        ok(&r);
        assert!(r.stderr.contains("takes no reply"), "{code}: {}", r.stderr);
        fake.fail("chat.postMessage", &[Fault::Error(code)]);
        let r = run_at(&sb, &fake, &read_fixture("sensu/resolve.json"), 3, &[]);
        ok(&r);
        assert_eq!(sb.state("slack", STATE)["open"], false, "{code}");
        let rooms = fake.created();
        assert_eq!(rooms.len(), 1, "{code}: no second war room");
        let roots: Vec<String> = rooms[0].roots().iter().map(|m| m.text.clone()).collect();
        assert_eq!(roots.len(), 3, "{code}: {roots:?}");
        assert!(roots[1].contains("CRITICAL → WARNING web-01/check_disk: DISK WARNING 85%"), "{code}: {roots:?}");
        assert!(roots[2].contains("RECOVERED web-01/check_disk"), "{code}: {roots:?}");
        fake.assert_no_violations();
    }
}

/// The same at `--flush`: a spooled recovery whose thread Slack refuses is posted to the
/// channel and closes the incident. Before, it moved to `failed/` (exit 69) and the incident
/// stayed open, so the check's next failure within `refresh` was taken for a repeat and paged
/// nobody.
#[test]
fn a_spooled_recovery_whose_thread_takes_no_reply_is_posted_to_the_channel_at_the_flush() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    ok(&run(&sb, &fake, &read_fixture("sensu/create.json")));
    fake.fail("chat.postMessage", &[Fault::Hang]);
    let r = run_at(&sb, &fake, &read_fixture("sensu/resolve.json"), 3, &["--timeout", "2s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    fake.fail("chat.postMessage", &[Fault::Error("restricted_action_thread_locked")]);
    let r = run_at(&sb, &fake, b"", 5, &["--flush"]);
    ok(&r);
    assert_eq!(sb.state("slack", STATE)["open"], false);
    assert!(sb.spooled("slack").is_empty());
    let roots: Vec<String> = fake.created()[0].roots().iter().map(|m| m.text.clone()).collect();
    assert_eq!(roots.len(), 2, "{roots:?}");
    assert!(roots[1].contains("RECOVERED web-01/check_disk"), "{roots:?}");
    fake.assert_no_violations();
}

/// What `--flush` posts to the channel in place of a spooled reply whose thread Slack refuses
/// (an acknowledgement, a severity change, a recovery) is not the incident's alert: the record
/// keeps the alert's `ts`, and what comes next is threaded under the alert, as after a live
/// reply posted to the channel so. Before, the flush took the stand-in's answer for an alert's
/// and recorded its `ts` as the thread: the recovery after a spooled acknowledgement or
/// severity change was threaded under that message instead of the alert (and a recovered
/// incident's record named the RECOVERED message as its alert).
#[test]
fn a_message_the_flush_posts_to_the_channel_in_place_of_a_reply_is_not_taken_for_the_alert() {
    for spooled in ["acknowledgement", "severity change", "recovery"] {
        let fake = FakeSlack::start();
        let sb = sandbox(json!({}));
        let url = fake.api_url();
        ok(&run(&sb, &fake, &event("web-01", "check_disk", 2, "DISK CRITICAL 99%")));
        let room = fake.created()[0].id.clone();
        let alert = fake.channel(&room).roots()[0].ts.clone();
        // Slack does not answer the reply: spooled.
        fake.fail("chat.postMessage", &[Fault::Hang]);
        let r = match spooled {
            "acknowledgement" => {
                let mut cmd = sb.command(&["--api-url", &url, "--from", "nagios", "--timeout", "2s"]);
                nagios_ack(&mut cmd, "bob").env("PAGERPIPE_NOW", (NOW + 60).to_string());
                run_command(cmd, b"")
            }
            "severity change" => run_at(&sb, &fake, &event("web-01", "check_disk", 1, "DISK WARNING 85%"), 1, &["--timeout", "2s"]),
            _ => run_at(&sb, &fake, &event("web-01", "check_disk", 0, "DISK OK"), 1, &["--timeout", "2s"]),
        };
        assert_eq!(r.code, Some(75), "{spooled}: {r:?}");
        // At the flush the alert's thread takes no reply (locked meanwhile): to the channel.
        fake.fail("chat.postMessage", &[Fault::Error("restricted_action_thread_locked")]);
        ok(&run_at(&sb, &fake, b"", 2, &["--flush"]));
        assert!(sb.spooled("slack").is_empty(), "{spooled}");
        let roots = fake.channel(&room).roots().len();
        assert_eq!(roots, 2, "{spooled}: the stand-in is in the channel");
        let st = sb.state("slack", STATE);
        assert_eq!(
            (st["refs"]["channel_id"].as_str(), st["refs"]["ts"].as_str()),
            (Some(room.as_str()), Some(alert.as_str())),
            "{spooled}: the record's thread is the alert's"
        );
        if spooled == "recovery" {
            assert_eq!(st["open"], false);
            fake.assert_no_violations();
            continue;
        }
        // The thread is unlocked again: the recovery is a reply under the alert, not under the
        // message posted in place of a reply.
        ok(&run_at(&sb, &fake, &event("web-01", "check_disk", 0, "DISK OK"), 3, &[]));
        let channel = fake.channel(&room);
        let stand_in = channel.roots()[1].ts.clone();
        assert!(channel.replies(&stand_in).is_empty(), "{spooled}: {:?}", channel.replies(&stand_in));
        let replies: Vec<String> = channel.replies(&alert).iter().map(|m| m.text.clone()).collect();
        assert!(replies.iter().any(|t| t.contains("RECOVERED web-01/check_disk")), "{spooled}: {replies:?}");
        fake.assert_no_violations();
    }
}

/// A spooled recovery delivered by `--flush` to a war room that is gone by then (archived,
/// deleted, or the bot removed) closes the incident, as a live recovery does. Before, it moved
/// to `failed/` (exit 69) and the incident stayed open: the check's next failure within
/// `refresh` was taken for a repeat of it and paged nobody.
#[test]
fn a_spooled_recovery_for_a_war_room_gone_meanwhile_closes_the_incident_at_the_flush() {
    for gone in ["archived", "deleted", "bot removed"] {
        let fake = FakeSlack::start();
        let sb = sandbox(json!({}));
        ok(&run(&sb, &fake, &read_fixture("sensu/create.json")));
        fake.fail("chat.postMessage", &[Fault::Hang]);
        let r = run_at(&sb, &fake, &read_fixture("sensu/resolve.json"), 3, &["--timeout", "2s"]);
        assert_eq!(r.code, Some(75), "{gone}: {r:?}");
        let first = fake.created()[0].id.clone();
        match gone {
            "archived" => fake.archive(&first),
            "deleted" => fake.delete(&first),
            _ => fake.remove_bot(&first),
        }
        let r = run_at(&sb, &fake, b"", 5, &["--flush"]);
        ok(&r);
        assert_eq!(sb.state("slack", STATE)["open"], false, "{gone}");
        assert!(sb.spooled("slack").is_empty(), "{gone}");
        // The next failure, within refresh of the alert, pages: a new war room.
        ok(&run_at(&sb, &fake, &fixture_at("sensu/create.json", 1_900_000_000), 10, &[]));
        let rooms = fake.created();
        assert_eq!(rooms.iter().filter(|c| c.id != first).count(), 1, "{gone}: a new war room");
        fake.assert_no_violations();
    }
}

/// The room a severity change was spooled for (WARNING → CRITICAL while Slack hung), gone by
/// the time `--flush` delivers it (archived, deleted, or the bot removed): the flush opens a
/// new war room for it (`-2`: created, topic, responders, the CRITICAL alert as its first
/// message), as a live update does, and the recovery is posted there. Before, the update moved
/// to `failed/` and the flush exited 69: the CRITICAL page reached nobody.
#[test]
fn a_spooled_severity_change_for_a_war_room_gone_meanwhile_opens_a_new_one_at_the_flush() {
    for gone in ["archived", "deleted", "bot removed"] {
        let fake = FakeSlack::start();
        let sb = sandbox(json!({}));
        ok(&run(&sb, &fake, &event("web-01", "check_disk", 1, "DISK WARNING 85%")));
        let first = fake.created()[0].id.clone();
        fake.fail("chat.postMessage", &[Fault::Hang]);
        let r = run_at(&sb, &fake, &event("web-01", "check_disk", 2, "DISK CRITICAL 99%"), 3, &["--timeout", "2s"]);
        assert_eq!(r.code, Some(75), "{gone}: {r:?}");
        match gone {
            "archived" => fake.archive(&first),
            "deleted" => fake.delete(&first),
            _ => fake.remove_bot(&first),
        }
        let f = run_at(&sb, &fake, b"", 5, &["--flush"]);
        assert_eq!(f.code, Some(0), "{gone}: {f:?}");
        assert!(f.stderr.contains(&format!("war room {first} is gone; opening a new one for web-01/check_disk")), "{gone}: {}", f.stderr);
        assert!(sb.failed("slack").is_empty(), "{gone}: {:?}", sb.failed("slack"));
        assert!(sb.spooled("slack").is_empty(), "{gone}");
        let rooms: Vec<_> = fake.created().into_iter().filter(|c| c.id != first).collect();
        assert_eq!(rooms.len(), 1, "{gone}: one new war room: {:?}", summary(&fake.calls()));
        let room = &rooms[0];
        assert_eq!(room.name, format!("{WAR_ROOM}-2"), "{gone}");
        assert!(room.topic.starts_with("CRITICAL web-01/check_disk: DISK CRITICAL 99%"), "{gone}: {}", room.topic);
        for u in [USERS[0], USERS[1]] {
            assert!(room.members.iter().any(|m| m == u), "{gone}: {u} invited: {:?}", room.members);
        }
        let roots = room.roots();
        assert_eq!(roots.len(), 1, "{gone}");
        assert!(roots[0].text.starts_with(":red_circle: CRITICAL web-01/check_disk: DISK CRITICAL 99%"), "{gone}: {}", roots[0].text);
        let st = sb.state("slack", STATE);
        assert_eq!((st["open"].as_bool(), st["severity"].as_str()), (Some(true), Some("critical")), "{gone}: {st}");
        assert_eq!(
            (st["refs"]["channel_id"].as_str(), st["refs"]["channel_name"].as_str(), st["refs"]["ts"].as_str()),
            (Some(room.id.as_str()), Some(room.name.as_str()), Some(roots[0].ts.as_str())),
            "{gone}"
        );
        // The recovery goes into the new room and closes the incident.
        ok(&run_at(&sb, &fake, &read_fixture("sensu/resolve.json"), 10, &[]));
        assert!(fake.channel(&room.id).replies(&roots[0].ts).iter().any(|m| m.text.contains("RECOVERED")), "{gone}");
        assert_eq!(sb.state("slack", STATE)["open"], false, "{gone}");
        fake.assert_no_violations();
    }
}

/// The same when the recovery was spooled behind the update (Slack unreachable for both): the
/// flush opens the new war room for the update, then posts the recovery there (not into the
/// room that is gone), in that order, and the incident is closed.
#[test]
fn a_spooled_update_and_recovery_for_a_war_room_gone_meanwhile_both_go_to_the_new_one() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({"archive_on_resolve": true}));
    ok(&run(&sb, &fake, &event("web-01", "check_disk", 1, "DISK WARNING 85%")));
    let first = fake.created()[0].id.clone();
    let down = format!("{REFUSED_URL}/api");
    let unreachable = |input: &[u8], minutes: u64| {
        let mut cmd = sb.command(&["--api-url", down.as_str(), "--timeout", "1s"]);
        cmd.env("PAGERPIPE_NOW", (NOW + minutes * 60).to_string());
        run_command(cmd, input)
    };
    let r = unreachable(&event("web-01", "check_disk", 2, "DISK CRITICAL 99%"), 3);
    assert_eq!(r.code, Some(75), "{r:?}");
    let r = unreachable(&read_fixture("sensu/resolve.json"), 4);
    assert_eq!(r.code, Some(75), "queued behind the update: {r:?}");
    assert_eq!(sb.spooled("slack").len(), 3, "update, recovery, archive");
    fake.archive(&first);
    let f = run_at(&sb, &fake, b"", 5, &["--flush"]);
    assert_eq!(f.code, Some(0), "{f:?}");
    assert!(sb.spooled("slack").is_empty());
    let rooms: Vec<_> = fake.created().into_iter().filter(|c| c.id != first).collect();
    assert_eq!(rooms.len(), 1, "{:?}", summary(&fake.calls()));
    let room = &rooms[0];
    let roots = room.roots();
    assert_eq!(roots.len(), 1);
    assert!(roots[0].text.starts_with(":red_circle: CRITICAL web-01/check_disk"), "{}", roots[0].text);
    let replies = room.replies(&roots[0].ts);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].text.contains("RECOVERED"), "{}", replies[0].text);
    assert!(room.is_archived, "archived on its recovery, as asked");
    assert_eq!(sb.state("slack", STATE)["open"], false);
    fake.assert_no_violations();
}

#[test]
fn rate_limited_without_retry_after_waits_at_least_a_second() {
    // §4: `rate_limited` (chat.postMessage's own code, HTTP 200, no Retry-After) is treated
    // like `ratelimited`: back off at least 1 s. Within a 1 s deadline that wait does not fit,
    // so the alert is spooled instead of being sent again at once (it was retried after the
    // 20 ms test backoff before).
    let fake = FakeSlack::start();
    fake.fail("chat.postMessage", &[Fault::Error("rate_limited")]);
    let sb = sandbox(json!({}));
    let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 0, &["--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("the next try has to wait 1 s"), "{}", r.stderr);
    assert_eq!(fake.calls_to("chat.postMessage").len(), 1, "not repeated at once");
    let r = run_at(&sb, &fake, b"", 1, &["--flush"]);
    ok(&r);
    assert_eq!(fake.created()[0].roots().len(), 1, "the flush posts the alert");
    fake.assert_no_violations();
}

#[test]
fn a_hanging_post_is_spooled_and_the_war_room_remembered() {
    let fake = FakeSlack::start();
    // One hang: the post may have reached Slack, so it is not repeated within a deadline that
    // cannot give it a whole attempt; it is spooled, and the flush (with the time) posts it.
    fake.fail("chat.postMessage", &[Fault::Hang]);
    let sb = sandbox(json!({}));
    let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 0, &["--timeout", "2s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("slack").len(), 1, "only the alert");
    let room = fake.created()[0].clone();
    assert_eq!(sb.state("slack", STATE)["refs"]["channel_id"], room.id.as_str(), "the war room is remembered");
    let r = run_at(&sb, &fake, b"", 1, &["--flush"]);
    ok(&r);
    let room = fake.channel(&room.id);
    assert_eq!(room.roots().len(), 1);
    assert_eq!(sb.state("slack", STATE)["refs"]["ts"], room.roots()[0].ts.as_str());
    assert_eq!(fake.created().len(), 1);
    fake.assert_no_violations();
}

/// Slack down and no spool directory that can be written (or a full disk): the war room's
/// create is neither delivered nor spooled, and the event is printed to stderr, as the other
/// handlers print theirs. Before, the topic, invites and alert were "queued behind" the create
/// that was never spooled, the log said "(the topic was not set yet (spooled))", and the exit
/// 75 came with no event printed: the page was lost without a trace.
#[test]
fn a_war_room_that_can_be_neither_opened_nor_spooled_has_its_event_printed() {
    let sb = sandbox(json!({}));
    let event: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    let args = ["--api-url", REFUSED_URL, "--timeout", "1s"];
    for (how, cmd) in [("no spool", sb.command_without_spool(&args)), ("full disk", crate::util::on_a_full_disk(&sb.command(&args)))] {
        let r = run_command(cmd, &read_fixture("sensu/create.json"));
        assert_eq!(r.code, Some(75), "{how}: {r:?}");
        let line = r.stderr.lines().find(|l| l.contains("undelivered event, not spooled")).unwrap_or_else(|| panic!("{how}: {}", r.stderr));
        let printed: Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
        assert_eq!(printed, event, "{how}: the event, in full");
        for claim in ["(spooled)", "queued behind", "spooled as"] {
            assert!(!r.stderr.contains(claim), "{how}: nothing was spooled, yet {claim:?}: {}", r.stderr);
        }
        assert!(sb.spooled("slack").is_empty(), "{how}");
    }
}

/// No spool directory, and Slack rate-limits the topic past the deadline: the topic is lost
/// (said as an error, not as spooled), and the invites and the alert still go out live. Before,
/// they were "queued behind" the topic that was never spooled: nothing was posted, the run
/// exited 75 as spooled, and no event was printed.
#[test]
fn a_topic_that_can_be_neither_set_nor_spooled_leaves_the_alert_to_go_out() {
    let fake = FakeSlack::start();
    fake.fail("conversations.setTopic", &[Fault::RateLimited(60)]);
    let sb = sandbox(json!({}));
    let url = fake.api_url();
    let mut cmd = sb.command_without_spool(&["--api-url", &url]);
    cmd.env("PAGERPIPE_NOW", NOW.to_string());
    let r = run_command(cmd, &read_fixture("sensu/create.json"));
    ok(&r);
    assert!(r.stderr.contains("slack: error: the topic was not set: "), "{}", r.stderr);
    assert!(r.stderr.contains("the topic was not set (not spooled)"), "{}", r.stderr);
    assert!(!r.stderr.contains("(spooled)") && !r.stderr.contains("queued behind"), "{}", r.stderr);
    let created = fake.created();
    assert_eq!(created.len(), 1, "{:?}", summary(&fake.calls()));
    assert_eq!(created[0].roots().len(), 1, "the alert went out: {}", r.stderr);
    assert!(created[0].members.iter().any(|m| m == USERS[0]), "the responders were invited: {:?}", created[0].members);
    assert_eq!(sb.state("slack", STATE)["refs"]["ts"], created[0].roots()[0].ts.as_str());
    fake.assert_no_violations();
}

#[test]
fn rate_limits_and_server_errors_are_retried_within_the_deadline() {
    let fake = FakeSlack::start();
    fake.fail("conversations.create", &[Fault::RateLimited(1)]);
    fake.fail("chat.postMessage", &[Fault::ServerError, Fault::Error("internal_error")]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"));
    ok(&r);
    assert_eq!(fake.calls_to("conversations.create").len(), 2);
    assert_eq!(fake.calls_to("chat.postMessage").len(), 3);
    assert_eq!(fake.created().len(), 1);
    assert_eq!(fake.created()[0].roots().len(), 1);
    fake.assert_no_violations();
}

#[test]
fn auth_and_scope_errors_exit_69_and_name_the_scope() {
    // Slack spec §5: `invalid_auth`, `not_authed`, `missing_scope`, … are "perm: do not retry;
    // report; exit 69", as a 401 is for every other handler (README, exit codes).
    let fake = FakeSlack::start();
    fake.set_scopes(&["chat:write"]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(
        r.stderr.contains("conversations.create answered missing_scope: the bot token needs the scope channels:manage"),
        "{}",
        r.stderr
    );
    // Not recorded as notified: the next event tries again.
    let sb = sandbox(json!({"token": "xoxb-0000000000-0000000000-WrongTokenForTests00"}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("answered invalid_auth"), "{}", r.stderr);
    assert!(!r.stderr.contains("WrongTokenForTests00"), "{}", r.stderr);
    // Any other code is permanent, with Slack's code in the line.
    let fake = FakeSlack::start();
    fake.fail("conversations.create", &[Fault::Error("restricted_action")]);
    let r = run(&sandbox(json!({})), &fake, &read_fixture("sensu/create.json"));
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(r.stderr.contains("conversations.create answered restricted_action"), "{}", r.stderr);
    fake.assert_no_violations();
}

/// With `archive_on_resolve`, a recovery whose post could not go out at once (Slack down for a
/// moment) is spooled with the archive behind it: the flush posts the recovery and archives
/// the war room, as a live recovery does. Before, only the post was spooled: the war room the
/// recovery closed stayed open for good.
#[test]
fn a_spooled_recovery_archives_the_war_room_at_the_flush() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({"archive_on_resolve": true}));
    ok(&run(&sb, &fake, &read_fixture("sensu/create.json")));
    fake.fail("chat.postMessage", &[Fault::Hang]);
    let r = run_at(&sb, &fake, &read_fixture("sensu/resolve.json"), 3, &["--timeout", "2s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    let r = run_at(&sb, &fake, b"", 5, &["--flush"]);
    ok(&r);
    assert!(sb.spooled("slack").is_empty(), "{:?}", sb.spooled("slack"));
    assert_eq!(sb.state("slack", STATE)["open"], false);
    let room = &fake.created()[0];
    assert!(room.messages.iter().any(|m| m.text.contains("RECOVERED")), "{:?}", room.messages);
    assert!(room.is_archived, "the war room of a recovery delivered by the flush is left open: {}", r.stderr);
    fake.assert_no_violations();
}

/// The same, with the war room deleted or the bot removed from it before the flush: the
/// recovery closes the incident (nothing to post to), and its archive has nothing left to do.
/// Before, the archive answered `channel_not_found` / `not_in_channel`, moved to `failed/` as
/// refused and the flush exited 69, pointing the operator at a request that was fine.
#[test]
fn a_spooled_archive_of_a_war_room_gone_meanwhile_is_done_at_the_flush() {
    for gone in ["deleted", "bot removed"] {
        let fake = FakeSlack::start();
        let sb = sandbox(json!({"archive_on_resolve": true}));
        ok(&run(&sb, &fake, &read_fixture("sensu/create.json")));
        fake.fail("chat.postMessage", &[Fault::Hang]);
        let r = run_at(&sb, &fake, &read_fixture("sensu/resolve.json"), 3, &["--timeout", "2s"]);
        assert_eq!(r.code, Some(75), "{gone}: {r:?}");
        assert_eq!(sb.spooled("slack").len(), 2, "{gone}: the recovery and its archive");
        let first = fake.created()[0].id.clone();
        match gone {
            "deleted" => fake.delete(&first),
            _ => fake.remove_bot(&first),
        }
        let r = run_at(&sb, &fake, b"", 5, &["--flush"]);
        assert_eq!(r.code, Some(0), "{gone}: {r:?}");
        assert!(sb.spooled("slack").is_empty(), "{gone}");
        assert!(sb.failed("slack").is_empty(), "{gone}: {:?}", sb.failed("slack"));
        assert_eq!(sb.state("slack", STATE)["open"], false, "{gone}");
        fake.assert_no_violations();
    }
}

#[test]
fn slack_down_spools_and_flush_delivers_in_order() {
    // Slack unreachable (connection refused); at --flush it answers at another address: the
    // spool keeps typed calls, and the requests are built from the settings then in force.
    let down = format!("{REFUSED_URL}/api");
    let sb = sandbox(json!({"archive_on_resolve": true}));
    let at = |input: &[u8], minutes: u64, extra: &[&str]| {
        let mut args = vec!["--api-url", down.as_str(), "--timeout", "1s"];
        args.extend_from_slice(extra);
        let mut cmd = sb.command(&args);
        cmd.env("PAGERPIPE_NOW", (NOW + minutes * 60).to_string());
        run_command(cmd, input)
    };
    let r = at(&read_fixture("sensu/create.json"), 0, &[]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("slack").len(), 4, "create, topic, invite, alert");
    // The recovery while Slack is still down queues behind them (and the archive after it).
    let r = at(&read_fixture("sensu/resolve.json"), 5, &[]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("slack").len(), 6);

    let fake = FakeSlack::start();
    let mut cmd = sb.command(&["--api-url", &fake.api_url(), "--flush"]);
    cmd.env("PAGERPIPE_NOW", (NOW + 600).to_string());
    let r = run_command(cmd, b"");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(sb.spooled("slack").is_empty());
    fake.assert_no_violations();
    let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, crate::fake::slack::WAR_ROOM_LIFE);
    let room = &fake.created()[0];
    assert_eq!(room.name, WAR_ROOM);
    let root = &room.roots()[0];
    assert!(root.text.contains("CRITICAL web-01/check_disk"));
    let replies = room.replies(&root.ts);
    assert_eq!(replies.len(), 1, "the recovery is threaded under the alert delivered before it");
    assert!(replies[0].text.contains("RECOVERED"));
    assert!(room.is_archived);
    let st = sb.state("slack", STATE);
    assert_eq!((st["refs"]["channel_id"].as_str(), st["refs"]["ts"].as_str()), (Some(room.id.as_str()), Some(root.ts.as_str())));
}

#[test]
fn dry_run_prints_the_requests_and_sends_nothing() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 0, &["--dry-run"]);
    ok(&r);
    assert!(fake.calls().is_empty());
    assert!(r.stdout.contains(&format!("\"name\": \"{WAR_ROOM}\"")), "{}", r.stdout);
    assert!(r.stdout.contains("\"channel\": \"{channel id}\""), "{}", r.stdout);
    assert!(r.stderr.contains("dry run: would POST"), "{}", r.stderr);
    assert!(!r.stdout.contains(BOT_TOKEN) && !r.stderr.contains(BOT_TOKEN));
}

#[test]
fn test_flag_checks_the_token_and_posts_a_test_message() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({"channel": ALERTS}));
    let r = run_at(&sb, &fake, b"", 0, &["--test", "--entity", "monitor-01"]);
    ok(&r);
    assert!(r.stderr.contains("token works: workspace Fake Workspace, bot @pagerpipe"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("test message posted to {ALERTS}")), "{}", r.stderr);
    let alerts = fake.channel(ALERTS);
    assert_eq!(alerts.messages.len(), 1);
    assert!(alerts.messages[0].text.contains("test message from pagerpipe on monitor-01"), "{}", alerts.messages[0].text);
    // Without a channel: the token is checked, nothing is posted.
    let sb = sandbox(json!({}));
    let r = run_at(&sb, &fake, b"", 0, &["--test"]);
    ok(&r);
    assert!(r.stderr.contains("no slack.channel is set"), "{}", r.stderr);
    assert_eq!(fake.calls_to("chat.postMessage").len(), 1);
    fake.assert_no_violations();
}

#[test]
fn an_entity_annotation_cannot_redirect_the_page() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    let mut v: Value = serde_json::from_slice(&read_fixture("sensu-go/failing.json")).expect("fixture");
    v["entity"]["metadata"]["annotations"] = json!({
        "pagerpipe/slack.channel": crate::fake::slack::GENERAL,
        "pagerpipe/slack.responders": "U04DAVE004",
        "pagerpipe/slack.token": "xoxb-0000000000-0000000000-HostileTokenForTests0",
    });
    let r = run(&sb, &fake, v.to_string().as_bytes());
    ok(&r);
    for setting in ["slack.channel", "slack.responders", "slack.token"] {
        assert!(r.stderr.contains(&format!("event override `{setting}` ignored: set by an entity annotation")), "{setting}: {}", r.stderr);
    }
    assert!(fake.channel(crate::fake::slack::GENERAL).messages.is_empty());
    let room = &fake.created()[0];
    assert!(!room.members.iter().any(|m| m == USERS[3]), "{:?}", room.members);
    assert!(fake.calls().iter().all(|c| c.ok()), "the configured token was used");
    fake.assert_no_violations();
}

#[test]
fn the_example_configuration_is_valid() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf.d/slack.json");
    let sb = Sandbox::new(BIN);
    let mut cmd = sb.command(&["--dry-run"]);
    cmd.arg("--config").arg(&example).env("PAGERPIPE_NOW", NOW.to_string());
    let r = run_command(cmd, &read_fixture("sensu/create.json"));
    ok(&r);
    assert!(r.stderr.contains("would POST https://slack.com/api/conversations.create"), "{}", r.stderr);
    assert!(r.stdout.contains(&format!("\"name\": \"{WAR_ROOM}\"")), "{}", r.stdout);
    assert!(r.stdout.contains("\"users\": \"U0123ABCD,U0456EFGH\""), "{}", r.stdout);
}

#[test]
fn private_war_rooms_and_many_responders() {
    let fake = FakeSlack::start();
    // 150 responders: Slack takes at most 100 per invite, so two calls; the fake knows 4 of them.
    let mut responders: Vec<String> = USERS.iter().map(|u| u.to_string()).collect();
    responders.extend((0..146).map(|i| format!("U9{i:07}")));
    let sb = sandbox(json!({"is_private": true, "responders": responders}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"));
    ok(&r);
    fake.assert_no_violations();
    let room = &fake.created()[0];
    assert!(room.is_private);
    assert_eq!(fake.calls_to("conversations.invite").len(), 2);
    for u in USERS {
        assert!(room.members.iter().any(|m| m == u), "{u}");
    }
    assert_eq!(r.stderr.matches("was not invited: user_not_found").count(), 146, "{}", r.stderr);
    assert!(r.stderr.contains("4 responders invited"), "{}", r.stderr);
}

#[test]
fn a_flush_uses_the_token_in_force_and_keeps_the_war_room_while_it_is_wrong() {
    let sb = sandbox(json!({"token": "xoxb-0000000000-0000000000-RevokedTokenForTests"}));
    let down = format!("{REFUSED_URL}/api");
    let r = run_at(&sb, &FakeSlack::start(), &read_fixture("sensu/create.json"), 0, &["--api-url", &down, "--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert_eq!(sb.spooled("slack").len(), 4);
    let fake = FakeSlack::start();
    // Slack is back, the token is still the revoked one: kept, not moved to failed/.
    let r = run_at(&sb, &fake, b"", 1, &["--flush"]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("invalid_auth"), "{}", r.stderr);
    assert!(!r.stderr.contains("RevokedTokenForTests"), "{}", r.stderr);
    assert_eq!(sb.spooled("slack").len(), 4, "kept for the flush after the fix");
    // The operator fixes the token: the same entries open the war room.
    sb.config("slack.json", &json!({"slack": {"token": BOT_TOKEN, "responders": [USERS[0]]}}));
    let r = run_at(&sb, &fake, b"", 2, &["--flush"]);
    ok(&r);
    assert!(sb.spooled("slack").is_empty());
    let room = &fake.created()[0];
    assert_eq!((room.name.as_str(), room.roots().len()), (WAR_ROOM, 1));
    fake.assert_no_violations();
}

/// A war room opened, its alert spooled (rate-limited), and the room archived by someone
/// before `--flush` posts the alert: the flush opens a new war room with the alert, as a live
/// alert into a remembered room that is gone does. Before, the alert moved to `failed/` (exit
/// 69): the incident's first page reached nobody.
#[test]
fn a_spooled_alert_for_a_war_room_archived_before_it_went_out_opens_a_new_one_at_the_flush() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    fake.fail("chat.postMessage", &[Fault::RateLimited(30)]);
    let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 0, &["--timeout", "3s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    let first = fake.created()[0].id.clone();
    fake.archive(&first);
    let f = run_at(&sb, &fake, b"", 1, &["--flush"]);
    assert_eq!(f.code, Some(0), "{f:?}");
    assert!(sb.failed("slack").is_empty() && sb.spooled("slack").is_empty(), "{}", f.stderr);
    let created = fake.created();
    assert_eq!(created.len(), 2, "{:?}", summary(&fake.calls()));
    let room = &created[1];
    assert_eq!((room.name.as_str(), room.is_archived, room.roots().len()), (format!("{WAR_ROOM}-2").as_str(), false, 1));
    assert!(room.topic.starts_with("CRITICAL web-01/check_disk"), "{}", room.topic);
    assert!(room.members.iter().any(|m| m == USERS[0]), "{:?}", room.members);
    assert!(fake.channel(&first).messages.is_empty());
    assert_eq!(sb.state("slack", STATE)["refs"]["ts"], room.roots()[0].ts.as_str());
    // The recovery goes there.
    ok(&run_at(&sb, &fake, &read_fixture("sensu/resolve.json"), 5, &[]));
    assert_eq!(fake.channel(&room.id).replies(&room.roots()[0].ts).len(), 1);
    fake.assert_no_violations();
}

#[test]
fn a_later_failure_opens_a_new_war_room_when_the_remembered_one_was_archived_before_its_alert_went_out() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({}));
    // The room is opened, its alert rate-limited and spooled; the room is remembered for it.
    fake.fail("chat.postMessage", &[Fault::RateLimited(30)]);
    let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 0, &["--timeout", "3s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    let first = fake.created()[0].id.clone();
    // As an earlier version spooled it: without the war room to open in its place.
    let (path, mut entry) = sb.spooled_entry("slack", &r.stderr);
    entry["payload"].as_object_mut().expect("payload").remove("or_else").expect("a room to open in its place");
    std::fs::write(&path, serde_json::to_vec(&entry).unwrap()).unwrap();
    // Someone archives the empty room; the flush's alert is refused for good.
    fake.archive(&first);
    let f = run_at(&sb, &fake, b"", 1, &["--flush"]);
    assert_eq!(f.code, Some(69), "{f:?}");
    assert_eq!(sb.failed("slack").len(), 1, "{}", f.stderr);
    // Days later the check fails again: it pages, in a new war room.
    let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 3 * 24 * 60, &[]);
    ok(&r);
    assert!(r.stderr.contains("answered is_archived; opening a new one for this incident"), "{}", r.stderr);
    let created = fake.created();
    assert_eq!(created.len(), 2, "{:?}", summary(&fake.calls()));
    let room = &created[1];
    assert_eq!((room.name.as_str(), room.is_archived, room.roots().len()), ("inc-20261204-web-01-check_disk", false, 1));
    assert!(room.members.iter().any(|m| m == USERS[0]), "{:?}", room.members);
    assert!(fake.channel(&first).messages.is_empty());
    fake.assert_no_violations();
}

#[test]
fn a_spooled_war_room_whose_stand_in_name_was_created_with_its_answer_lost_is_found_by_that_name() {
    let fake = FakeSlack::start();
    fake.set_clock(NOW);
    let sb = sandbox(json!({}));
    fake.fail("conversations.create", &[Fault::RateLimited(30)]);
    let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 0, &["--timeout", "3s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    // Another incident's room of a name that folds alike (web.01), opened by this bot since.
    let other = fake.add_channel_created(WAR_ROOM, true, NOW + 30);
    // The flush: name_taken, then the stand-in -2 is created but its answer is lost.
    fake.fail("conversations.create", &[Fault::Slow(0), Fault::Lost]);
    let f = run_at(&sb, &fake, b"", 1, &["--flush", "--timeout", "4s"]);
    assert_eq!(f.code, Some(75), "{f:?}");
    assert!(f.stderr.contains("name_taken; sending a request in its place"), "{}", f.stderr);
    // The next flush looks up the -2 it sent, finds it, and opens the war room there.
    let f = run_at(&sb, &fake, b"", 2, &["--flush", "--timeout", "4s"]);
    ok(&f);
    assert!(f.stderr.contains("the service had acted on it after all; not sent again"), "{}", f.stderr);
    assert!(fake.channel(&other).messages.is_empty(), "nothing posted into the other incident's room");
    let ours: Vec<_> = fake.channels().into_iter().filter(|c| c.name.starts_with(&format!("{WAR_ROOM}-"))).collect();
    assert_eq!(ours.len(), 1, "one war room made by the flushes: {:?}", summary(&fake.calls()));
    let room = &ours[0];
    assert_eq!((room.name.as_str(), room.roots().len()), (format!("{WAR_ROOM}-2").as_str(), 1));
    assert!(room.members.iter().any(|m| m == USERS[0]), "{:?}", room.members);
    assert!(room.topic.starts_with("CRITICAL web-01/check_disk"), "{}", room.topic);
    fake.assert_no_violations();
}

/// A check that opens its war rooms with a token of its own (`check.slack.token`), refused at
/// the flush (revoked since): its requests are refused for good (no fix of the settings
/// reaches them), and the other incidents' war rooms, opened with the operator's token, still
/// open. Before, Slack's `invalid_auth` stopped the whole flush at the first such entry, so one
/// check's revoked token held back every other page until the entries expired.
#[test]
fn a_checks_own_token_refused_at_the_flush_holds_back_no_other_war_room() {
    let sb = sandbox(json!({}));
    let down = format!("{REFUSED_URL}/api");
    let wrong = "xoxb-0000000000-0000000000-WrongTokenForTests00";
    let mut own: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    own["check"]["name"] = json!("check_db");
    own["check"]["slack"] = json!({"token": wrong});
    for input in [own.to_string().into_bytes(), read_fixture("sensu/create.json")] {
        let r = run_at(&sb, &FakeSlack::start(), &input, 0, &["--api-url", &down, "--timeout", "1s"]);
        assert_eq!(r.code, Some(75), "{r:?}");
    }
    let fake = FakeSlack::start();
    let r = run_at(&sb, &fake, b"", 1, &["--flush"]);
    assert!(r.stderr.contains("invalid_auth"), "{}", r.stderr);
    assert!(!r.stderr.contains(wrong), "{}", r.stderr);
    let rooms: Vec<String> = fake.created().iter().map(|c| c.name.clone()).collect();
    assert_eq!(rooms, [WAR_ROOM], "the other check's war room opened: {}", r.stderr);
    assert_eq!(r.code, Some(69), "{r:?}");
    assert!(sb.spooled("slack").is_empty(), "{:?}", sb.spooled("slack"));
    assert!(!sb.failed("slack").is_empty(), "{}", r.stderr);
    fake.assert_no_violations();
}

/// The other way round: the operator's token is refused at the flush (rotated, not yet in the
/// settings): its entries are kept for the flush after the fix, and a check that opens its war
/// rooms with a token of its own is not held back by them.
#[test]
fn the_operators_token_refused_at_the_flush_holds_back_no_war_room_opened_with_another() {
    let sb = sandbox(json!({"token": "xoxb-0000000000-0000000000-RevokedTokenForTests"}));
    let down = format!("{REFUSED_URL}/api");
    let mut own: Value = serde_json::from_slice(&read_fixture("sensu/create.json")).unwrap();
    own["check"]["name"] = json!("check_db");
    own["check"]["slack"] = json!({"token": BOT_TOKEN});
    for input in [read_fixture("sensu/create.json"), own.to_string().into_bytes()] {
        let r = run_at(&sb, &FakeSlack::start(), &input, 0, &["--api-url", &down, "--timeout", "1s"]);
        assert_eq!(r.code, Some(75), "{r:?}");
    }
    let kept = sb.spooled("slack").len();
    let fake = FakeSlack::start();
    let r = run_at(&sb, &fake, b"", 1, &["--flush"]);
    assert_eq!(r.code, Some(78), "{r:?}");
    assert!(r.stderr.contains("fix the configuration; the entry is kept"), "{}", r.stderr);
    let rooms: Vec<String> = fake.created().iter().map(|c| c.name.clone()).collect();
    assert_eq!(rooms, ["inc-20261201-web-01-check_db"], "{}", r.stderr);
    assert!(sb.failed("slack").is_empty(), "{:?}", sb.failed("slack"));
    assert!(!sb.spooled("slack").is_empty() && sb.spooled("slack").len() < kept, "{:?}", sb.spooled("slack"));
    sb.config("slack.json", &json!({"slack": {"token": BOT_TOKEN, "responders": [USERS[0], USERS[1]]}}));
    let r = run_at(&sb, &fake, b"", 2, &["--flush"]);
    ok(&r);
    assert_eq!(fake.created().len(), 2, "{}", r.stderr);
    fake.assert_no_violations();
}

/// Mackerel host names are the host's own (the agent registers them): a second host calling
/// itself `app-01`, with a check monitor `nginx` of its own, fails a few minutes after the real
/// app-01's nginx alert opened its war room. Its alert (another `alert.id`, another incident)
/// met `name_taken` for the same channel name, and the lookup for a room an interrupted attempt
/// of its own had made took the real war room (recent, the bot a member, its topic naming
/// `app-01/nginx`): its recovery was then posted there and, with archive_on_resolve, archived
/// it, while app-01's nginx was still down.
#[test]
fn a_mackerel_host_named_like_another_does_not_take_over_its_war_room() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({"archive_on_resolve": true}));
    let real: Value = serde_json::from_slice(&read_fixture("mackerel/check-alert.json")).unwrap();
    let r = run(&sb, &fake, real.to_string().as_bytes());
    ok(&r);
    let room = fake.created()[0].clone();
    // The impostor: another host, another alert, the same names.
    let mut fake_host = real.clone();
    fake_host["host"]["id"] = json!("9ZzImpostor");
    fake_host["alert"]["id"] = json!("5Impostor01");
    fake_host["alert"]["url"] = json!("https://mackerel.io/orgs/Example/alerts/5Impostor01");
    fake_host["message"] = json!("CRITICAL: nginx is not running");
    let r = run_at(&sb, &fake, fake_host.to_string().as_bytes(), 3, &[]);
    ok(&r);
    assert!(r.stderr.contains("is the war room of another incident the ledger holds open"), "{}", r.stderr);
    let rooms = fake.created();
    assert_eq!(rooms.len(), 2, "a war room of its own: {:?}", summary(&fake.calls()));
    assert_eq!(rooms[1].name, format!("{}-2", room.name));
    assert_eq!(fake.channel(&room.id).topic, room.topic, "the real war room's topic is left as it was");
    let mut recovered = fake_host.clone();
    crate::util::mackerel_status(&mut recovered, "ok", 1764590600);
    recovered["message"] = json!("OK: nginx is running");
    let r = run_at(&sb, &fake, recovered.to_string().as_bytes(), 5, &[]);
    ok(&r);
    let now = fake.channel(&room.id);
    assert!(!now.is_archived, "the real app-01's war room was archived by another host's recovery: {:?}", summary(&fake.calls()));
    assert_eq!(
        now.roots().len(),
        1,
        "only app-01's own alert in its war room: {:?}",
        now.roots().iter().map(|m| &m.text).collect::<Vec<_>>()
    );
    fake.assert_no_violations();
}

/// App-01's nginx alert (`mackerel/check-alert.json`), and the same alert as another host
/// that registered as app-01, with a check named nginx, sends it: (real, impostor).
fn mackerel_impostor() -> (Value, Value) {
    let real: Value = serde_json::from_slice(&read_fixture("mackerel/check-alert.json")).unwrap();
    let mut impostor = real.clone();
    impostor["host"]["id"] = json!("9ZzImpostor");
    impostor["alert"]["id"] = json!("5Impostor01");
    impostor["alert"]["url"] = json!("https://mackerel.io/orgs/Example/alerts/5Impostor01");
    (real, impostor)
}

/// The same at `--flush`: an impostor's spooled severity change whose war room is gone by
/// then opens a war room in its place, and on `name_taken` looks for the room an earlier
/// attempt of its own made. The real app-01's war room, opened minutes before under the next
/// name (the impostor had the first), has a topic naming app-01/nginx too: it is the ledger's
/// for another incident key, never the impostor's to move into, post in and archive.
#[test]
fn a_mackerel_host_named_like_another_does_not_take_over_its_war_room_at_the_flush() {
    let fake = FakeSlack::start();
    let sb = sandbox(json!({"archive_on_resolve": true}));
    let (real, mut impostor) = mackerel_impostor();
    impostor["alert"]["status"] = json!("warning");
    impostor["message"] = json!("WARNING: nginx is slow");
    ok(&run(&sb, &fake, impostor.to_string().as_bytes()));
    let bogus = fake.created()[0].clone();
    // The real app-01's nginx fails a minute later: a war room of its own, `-2`.
    ok(&run_at(&sb, &fake, real.to_string().as_bytes(), 1, &[]));
    let room = fake.created()[1].clone();
    assert_eq!(room.name, format!("{}-2", bogus.name), "{:?}", summary(&fake.calls()));
    // The impostor's severity change is spooled; its room is archived meanwhile.
    let mut critical = impostor.clone();
    critical["alert"]["status"] = json!("critical");
    critical["alert"]["statusChangedAt"] = json!(1764590500);
    critical["message"] = json!("CRITICAL: nginx is not running");
    fake.fail("chat.postMessage", &[Fault::Hang]);
    let r = run_at(&sb, &fake, critical.to_string().as_bytes(), 2, &["--timeout", "2s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    fake.archive(&bogus.id);
    let f = run_at(&sb, &fake, b"", 3, &["--flush"]);
    assert_eq!(f.code, Some(0), "{f:?}");
    assert!(f.stderr.contains("is the war room of another incident the ledger holds open"), "{}", f.stderr);
    assert_eq!(fake.channel(&room.id).roots().len(), 1, "only app-01's own alert in its war room: {:?}", summary(&fake.calls()));
    assert_eq!(fake.channel(&room.id).topic, room.topic, "the real war room's topic is left as it was");
    // The impostor's recovery archives its own room, not the real one.
    let mut recovered = critical.clone();
    crate::util::mackerel_status(&mut recovered, "ok", 1764590600);
    recovered["message"] = json!("OK: nginx is running");
    ok(&run_at(&sb, &fake, recovered.to_string().as_bytes(), 4, &[]));
    assert!(!fake.channel(&room.id).is_archived, "the real app-01's war room was archived: {:?}", summary(&fake.calls()));
    fake.assert_no_violations();
}

/// The same for a create of unknown fate: the flush looks for a channel of its name, the bot
/// in it, created since, with no topic yet (the lost create's). The real app-01's war room,
/// opened meanwhile from another host sharing the ledger under that name, whose topic Slack
/// did not take, looked so: the impostor took it for its own, posted its alert there, and
/// with archive_on_resolve its recovery archived it while app-01's nginx was down.
#[test]
fn a_lost_create_lookup_passes_over_a_war_room_the_ledger_holds_for_another_key() {
    let fake = FakeSlack::start();
    fake.set_clock(NOW);
    let sb = sandbox(json!({"archive_on_resolve": true}));
    let (real, impostor) = mackerel_impostor();
    fake.fail("conversations.create", &[Fault::Hang]);
    let r = run_at(&sb, &fake, impostor.to_string().as_bytes(), 0, &["--timeout", "2s"]);
    assert_eq!(r.code, Some(75), "spooled with its fate unknown: {r:?}");
    assert!(fake.created().is_empty());
    // app-01's page goes out from another host sharing the ledger (a spool of its own);
    // Slack does not take its topic.
    fake.fail("conversations.setTopic", &[Fault::Error("too_long")]);
    let elsewhere = sb.dir.path().join("spool-elsewhere");
    ok(&run_at(&sb, &fake, real.to_string().as_bytes(), 1, &["--spool-dir", elsewhere.to_str().unwrap()]));
    let room = fake.created()[0].clone();
    assert!(room.topic.is_empty());
    let f = run_at(&sb, &fake, b"", 2, &["--flush"]);
    assert_eq!(f.code, Some(0), "{f:?}");
    assert!(!f.stderr.contains("acted on it after all"), "app-01's war room taken for the lost create's: {}", f.stderr);
    assert_eq!(fake.channel(&room.id).roots().len(), 1, "only app-01's own alert in its war room: {:?}", summary(&fake.calls()));
    assert_eq!(fake.created().len(), 2, "a war room of its own: {}", f.stderr);
    let mut recovered = impostor.clone();
    crate::util::mackerel_status(&mut recovered, "ok", 1764590600);
    recovered["message"] = json!("OK: nginx is running");
    ok(&run_at(&sb, &fake, recovered.to_string().as_bytes(), 3, &[]));
    assert!(!fake.channel(&room.id).is_archived, "the real app-01's war room was archived: {:?}", summary(&fake.calls()));
    fake.assert_no_violations();
}

/// A `conversations.create` answered `ok: true` without the channel's id: Slack made the
/// channel (maybe), and nothing can go into it without its id. Before, the handler filled in
/// its dry-run placeholder, sent the topic, the invites and the alert to channel
/// `{channel id}`, got `channel_not_found` and exited 69 with nothing spooled: the page lost,
/// the channel Slack made left empty. Now the create is of unknown fate: spooled (exit 75),
/// and the flush finds the room by name before creating it again, and posts the alert there.
#[test]
fn a_create_answered_without_the_channel_id_is_spooled_and_its_room_found_at_the_flush() {
    let fake = FakeSlack::start();
    fake.set_clock(NOW);
    fake.fail("conversations.create", &[Fault::Without("channel")]);
    let sb = sandbox(json!({}));
    let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 0, &["--timeout", "3s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("conversations.create answered ok without the channel's id"), "{}", r.stderr);
    assert!(!r.stderr.contains("{channel id}"), "{}", r.stderr);
    let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, ["conversations.create"], "nothing sent to a placeholder channel");
    let flush = run_at(&sb, &fake, b"", 1, &["--flush"]);
    found_after_all(&fake, &flush);
    let room = &fake.created()[0];
    assert_eq!(room.name, WAR_ROOM);
    assert!(room.topic.starts_with("CRITICAL web-01/check_disk"), "{}", room.topic);
    let st = sb.state("slack", STATE);
    assert_eq!(st["refs"]["channel_id"], room.id.as_str());
    assert_eq!(st["refs"]["ts"], room.roots()[0].ts.as_str());
}

/// A 2xx answer to `conversations.create` that is not Slack's (a proxy's HTML page, `{}`) is
/// no refusal: Slack may have made the room. Before, it was refused for good (exit 69) and the
/// page lost; now it is spooled of unknown fate (exit 75), looked up at the flush, and the
/// room Slack made is used, not a second one.
#[test]
fn a_create_answered_with_a_page_that_is_not_slacks_is_spooled_and_looked_up_not_refused() {
    for body in ["<html><body>Bad gateway, but 200</body></html>", "{}"] {
        let fake = FakeSlack::start();
        fake.set_clock(NOW);
        fake.fail("conversations.create", &[Fault::Garbled(body)]);
        let sb = sandbox(json!({}));
        let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 0, &["--timeout", "3s"]);
        assert_eq!(r.code, Some(75), "{body}: {r:?}");
        assert!(r.stderr.contains("conversations.create answered HTTP 200 without Slack's answer"), "{}", r.stderr);
        assert_eq!(fake.calls_to("conversations.create").len(), 1, "{body}: not sent again blindly");
        let flush = run_at(&sb, &fake, b"", 1, &["--flush"]);
        found_after_all(&fake, &flush);
        assert_eq!(sb.state("slack", STATE)["refs"]["channel_id"], fake.created()[0].id.as_str(), "{body}");
    }
}

/// The flush's `conversations.list` answered with a page that is not Slack's (a proxy's HTML
/// with a 200) or with Slack's own error cannot say whether the lost create made the room.
/// Before, after four asks the create was sent again: a second war room under the next name.
/// Now the entry is kept (75) with its fate unknown, and the flush that can read the list
/// finds the room the first create made.
#[test]
fn a_lost_create_whose_lookup_gets_no_usable_answer_is_kept_not_created_again() {
    for fault in [Fault::Garbled("<html><body>Bad gateway, but 200</body></html>"), Fault::Error("internal_error")] {
        let fake = FakeSlack::start();
        fake.set_clock(NOW);
        fake.fail("conversations.create", &[Fault::Garbled("<html>proxy</html>")]);
        let sb = sandbox(json!({}));
        let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 0, &["--timeout", "3s"]);
        assert_eq!(r.code, Some(75), "{fault:?}: {r:?}");
        assert_eq!(fake.created().len(), 1, "Slack made the room");
        let spooled = sb.spooled("slack").len();
        fake.fail("conversations.list", &vec![fault.clone(); 50]);
        let flush = run_at(&sb, &fake, b"", 1, &["--flush", "--timeout", "3s"]);
        assert_eq!(flush.code, Some(75), "{fault:?}: kept: {flush:?}");
        assert!(flush.stderr.contains("cannot find out whether it went through"), "{}", flush.stderr);
        assert!(!flush.stderr.contains("sending it again"), "{}", flush.stderr);
        assert_eq!(fake.calls_to("conversations.create").len(), 1, "{fault:?}: not created again blind: {}", flush.stderr);
        assert_eq!(sb.spooled("slack").len(), spooled, "all kept: {}", flush.stderr);
        assert!(sb.failed("slack").is_empty());
        fake.heal("conversations.list");
        let flush = run_at(&sb, &fake, b"", 2, &["--flush"]);
        found_after_all(&fake, &flush);
    }
}

/// A 2xx answer to the alert's `chat.postMessage` that is not Slack's: not refused (exit 69,
/// the page lost, before), but retried and spooled as a request of unknown fate (exit 75),
/// which the flush delivers.
#[test]
fn an_alert_answered_with_a_page_that_is_not_slacks_is_spooled_not_refused() {
    let fake = FakeSlack::start();
    // Every answer within the deadline garbled (a request of unknown fate is sent again only
    // with a whole attempt's time to spare), then Slack's own again.
    fake.fail("chat.postMessage", &vec![Fault::Garbled("<html>proxy</html>"); 8]);
    let sb = sandbox(json!({}));
    let r = run_at(&sb, &fake, &read_fixture("sensu/create.json"), 0, &["--timeout", "1s"]);
    assert_eq!(r.code, Some(75), "{r:?}");
    assert!(r.stderr.contains("chat.postMessage answered HTTP 200 without Slack's answer (not JSON)"), "{}", r.stderr);
    assert!(sb.failed("slack").is_empty());
    let sent = fake.calls_to("chat.postMessage").len();
    assert!(sent < 8, "the deadline ran out first: {sent}");
    let mut flush = run_at(&sb, &fake, b"", 1, &["--flush"]);
    for minute in 2..12 {
        if flush.code == Some(0) {
            break;
        }
        assert_eq!(flush.code, Some(75), "kept, not refused: {flush:?}");
        flush = run_at(&sb, &fake, b"", minute, &["--flush"]);
    }
    ok(&flush);
    assert!(sb.failed("slack").is_empty());
    let room = &fake.created()[0];
    let roots = room.roots();
    assert!(!roots.is_empty(), "the alert is in the war room");
    assert_eq!(sb.state("slack", STATE)["refs"]["ts"], roots.last().unwrap().ts.as_str());
    fake.assert_no_violations();
}

/// An alert answered `ok: true` without its `ts` was posted, but nothing can be threaded under
/// it: the record keeps no `ts` (before, it kept the dry-run placeholder `{ts}`, and every
/// reply was sent with `thread_ts: "{ts}"`), and the recovery goes to the channel.
#[test]
fn an_alert_answered_without_its_ts_stores_no_placeholder_and_the_recovery_goes_to_the_channel() {
    let fake = FakeSlack::start();
    fake.fail("chat.postMessage", &[Fault::Without("ts")]);
    let sb = sandbox(json!({}));
    let r = run(&sb, &fake, &read_fixture("sensu/create.json"));
    ok(&r);
    assert!(r.stderr.contains("alert posted (Slack's answer gave no ts"), "{}", r.stderr);
    assert!(!r.stderr.contains("{ts}"), "{}", r.stderr);
    let st = sb.state("slack", STATE);
    assert!(st["refs"].get("ts").is_none_or(Value::is_null), "no ts stored: {st}");
    let r = run_at(&sb, &fake, &read_fixture("sensu/resolve.json"), 3, &[]);
    ok(&r);
    assert!(r.stderr.contains("recovery posted to the channel of #"), "{}", r.stderr);
    assert!(fake.calls_to("chat.postMessage").iter().all(|c| c.args.get("thread_ts").is_none()), "{:?}", fake.calls());
    let room = &fake.created()[0];
    assert_eq!(room.roots().len(), 2, "the alert and the recovery, both in the channel");
    assert_eq!(sb.state("slack", STATE)["open"], false);
    fake.assert_no_violations();
}
