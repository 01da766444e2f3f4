//! Library-side statistics: the server's answer kinds and histograms, and the
//! client's per-survey-URL numbers, on a real loopback mesh.

mod common;

use std::time::Duration;

use common::{wait_until, Scratch};
use gopherdiscovery::{Client, Histogram, Server, HISTOGRAM_BUCKETS};

fn server(dir: &Scratch) -> Server {
    Server::builder()
        .survey(dir.url("survey"))
        .publish(dir.url("publish"))
        .snapshot(dir.url("snapshot"))
        .interval(Duration::from_millis(100))
        .start()
        .unwrap()
}

fn consistent(h: &Histogram) {
    assert_eq!(h.buckets.len(), HISTOGRAM_BUCKETS);
    assert_eq!(h.buckets.iter().sum::<u64>(), h.count, "{h:?}");
    let cumulative = h.cumulative();
    assert_eq!(cumulative[HISTOGRAM_BUCKETS - 1], (f64::INFINITY, h.count));
    assert!(cumulative
        .windows(2)
        .all(|w| w[0].1 <= w[1].1 && w[0].0 < w[1].0));
}

#[test]
fn server_counts_announces_apart_and_times_answers_and_rounds() {
    let dir = Scratch::new("stats-server");
    let server = server(&dir);
    let client = Client::builder("a")
        .survey(dir.url("survey"))
        .start()
        .unwrap();
    wait_until("three answers to surveys, timed", || {
        let s = server.stats();
        s.answers >= 3 && s.answer_latency.count >= 3 && s.round_lag.count >= 3
    });
    let s = server.stats();
    // One connection: one announce, not counted among the answers.
    assert_eq!(s.announces, 1, "{s:?}");
    assert!(s.answer_latency.count <= s.answers, "{s:?}");
    // Loopback: answers come within the deadline (50 ms), rounds start on time
    // to within a second even on a loaded machine.
    assert!(
        s.answer_latency.sum_micros < s.answer_latency.count * 50_000,
        "{s:?}"
    );
    assert_eq!(s.round_lag.buckets[HISTOGRAM_BUCKETS - 1], 0, "{s:?}");
    consistent(&s.answer_latency);
    consistent(&s.round_lag);
    // A metadata change is announced again.
    client
        .set_metadata([("k".to_string(), "v".to_string())].into())
        .unwrap();
    wait_until("the second announce", || server.stats().announces == 2);
}

#[test]
fn client_stats_are_per_survey_url() {
    let dir = Scratch::new("stats-client");
    let server = server(&dir);
    // The second URL has no server: the client must show it is not surveyed there.
    let nobody = dir.url("nobody");
    let client = Client::builder("a")
        .survey(dir.url("survey"))
        .survey(&nobody)
        .start()
        .unwrap();
    wait_until("two surveys answered on the first URL", || {
        client.stats().survey_urls[0].surveys_answered >= 2
    });
    let c = client.stats();
    assert_eq!(c.survey_urls.len(), 2);
    let (up, down) = (&c.survey_urls[0], &c.survey_urls[1]);
    assert_eq!(up.url, dir.url("survey"));
    assert!(up.connected);
    assert_eq!(up.announces_sent, 1);
    assert!(up.last_survey_age.is_some());
    assert_eq!(down.url, nobody);
    assert!(!down.connected);
    assert_eq!((down.surveys_answered, down.announces_sent), (0, 0));
    assert_eq!(down.last_survey_age, None);
    assert_eq!(c.connections, 1);
    assert_eq!(c.announces_sent, 1);
    assert!(c.surveys_answered >= up.surveys_answered);

    // A second server comes up on the second URL: the client connects, announces
    // and is surveyed there too.
    let mut second = Server::builder()
        .survey(&nobody)
        .publish(dir.url("publish2"))
        .snapshot(dir.url("snapshot2"))
        .interval(Duration::from_millis(100))
        .start()
        .unwrap();
    wait_until("surveyed on the second URL", || {
        let d = &client.stats().survey_urls[1];
        d.connected && d.surveys_answered >= 1 && d.announces_sent == 1
    });
    second.close();
    wait_until("the second URL shown disconnected", || {
        !client.stats().survey_urls[1].connected
    });
    let c = client.stats();
    assert!(c.survey_urls[0].connected);
    assert_eq!(c.connections, 1);
    drop(server);
}
