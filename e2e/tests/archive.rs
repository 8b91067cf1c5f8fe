//! The archive group round trip against the real broker: a real recording replayed into fresh
//! topics, archived by `tweet-consumer --role archive --exit-at-end` into gzip JSON-lines files
//! (small `--archive-max-bytes`, so files rotate by size), the archive replayed by
//! `tweet-producer --replay` (the folder; then one file alone and the rest concatenated) into
//! fresh topic sets, and every record value compared byte for byte with the original's.
//!
//! Needs the binaries built, the local broker, and `../shared/data`.

mod support;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use support::{
    archive_summary, assert_group_at_end, consumer_command, create_topics, delete_topics,
    producer_summary, read_back, run, shared_data, topic_flags, unique,
};
use tweet_pipeline_common::config::TopicNames;
use tweet_pipeline_common::Destination;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// (topic role, value) of every record of a topic set, sorted.
fn values(names: &TopicNames, count: usize) -> Vec<(&'static str, Vec<u8>)> {
    let topics: Vec<&str> = Destination::ALL.iter().map(|d| names.name(*d)).collect();
    let mut records: Vec<(&'static str, Vec<u8>)> = read_back(&topics, count)
        .into_iter()
        .map(|(topic, _, value, _)| {
            let role = names
                .destination(&topic)
                .expect("one of the topics")
                .as_str();
            (role, value)
        })
        .collect();
    records.sort();
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn archived_files_replay_to_the_same_values() {
    let prefix = unique("archive");
    let original = create_topics(&format!("{prefix}-a-")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = shared_data().join("twitter_v1");
    let mut bytes = Vec::new();
    for file in [
        "stream_sample/sample_2013-05-05_MyCSHome.jsonl",
        "stream_filter/filter_locations_2018-01-23_pablobarbera.jsonl",
        // A real cut-off message last: it goes to the dead-letter topic, and is archived too.
        "raw_http/statuses_filter_2015-12-02T165907Z_truncated.body.decoded.txt",
    ] {
        bytes.extend(std::fs::read(data.join(file)).expect("recording"));
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
    }
    let recording = dir.path().join("recording.jsonl");
    std::fs::write(&recording, &bytes).expect("write recording");

    let produced = producer_summary(&run(support::producer_command()
        .arg("--replay")
        .arg(&recording)
        .args(topic_flags(&original))
        .arg("--metrics-addr=off")));
    let sent_to = |d: Destination| produced.acked[d];
    let sent: u64 = Destination::ALL.iter().map(|d| sent_to(*d)).sum();
    assert!(sent > 1000);
    assert_eq!(sent_to(Destination::DeadLetter), 1);
    let originals = values(&original, sent as usize);
    assert_eq!(originals.len() as u64, sent);

    // Archive, rotating by size (~64 KiB of gzip per file).
    let archive = dir.path().join("archive");
    let group = unique("archive");
    let archived = run(consumer_command()
        .args(["--group", &group, "--role", "archive", "--exit-at-end"])
        .arg("--archive-dir")
        .arg(&archive)
        .args(["--archive-max-bytes", "65536"])
        .args(topic_flags(&original))
        .arg("--metrics-addr=off"));
    assert_eq!(archive_summary(&archived).records_consumed, sent);
    assert_eq!(archive_summary(&archived).records_archived, sent);
    assert_eq!(archive_summary(&archived).partitions_failed, 0);
    let files = files_under(&archive);
    let finished = archive_summary(&archived).files_finished;
    assert_eq!(files.len() as u64, finished, "{files:?}");
    assert!(
        finished > 8,
        "files rotate by size beyond one per partition: {files:?}"
    );
    for file in &files {
        let relative = file.strip_prefix(&archive).expect("under the archive");
        let parts: Vec<&str> = relative.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(parts.len(), 3, "<topic>/<date>/<file>: {relative:?}");
        let (topic, day, name) = (parts[0], parts[1], parts[2]);
        assert!(original.destination(topic).is_some(), "{relative:?}");
        assert_eq!(day.len(), 10, "{relative:?}");
        assert!(
            name.starts_with(&format!("{topic}-{day}T")) && name.ends_with(".jsonl.gz"),
            "{relative:?}"
        );
        let head = std::fs::read(file).expect("archive file");
        assert!(head.starts_with(&[0x1f, 0x8b]), "gzip: {relative:?}");
    }
    // Offsets were committed after the files were renamed: all of them, at the end.
    let topics: Vec<&str> = Destination::ALL.iter().map(|d| original.name(*d)).collect();
    assert_group_at_end(&group, &topics);

    // A long-running archive instance (no --exit-at-end) commits only what rotation by age
    // made durable: once its group is at the end, every file is finished and renamed.
    let by_age = dir.path().join("archive-by-age");
    let age_group = unique("archive-age");
    let (metrics_port, _) = support::free_ports();
    let running = consumer_command()
        .args(["--group", &age_group, "--role", "archive"])
        .arg("--archive-dir")
        .arg(&by_age)
        .args(["--archive-max-age-secs", "1"])
        .args(topic_flags(&original))
        .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tweet-consumer starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !support::group_at_end(&age_group, &topics) {
        assert!(
            std::time::Instant::now() < deadline,
            "rotation by age did not commit the end of every partition"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let aged = files_under(&by_age);
    assert!(
        aged.iter()
            .all(|f| f.extension().is_some_and(|e| e == "gz")),
        "no .part file left once everything is committed: {aged:?}"
    );
    let mut lines = 0;
    for file in &aged {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(file).expect("archive file"))
            .read_to_string(&mut text)
            .expect("gzip JSON lines");
        lines += text.lines().count() as u64;
    }
    assert_eq!(lines, sent, "the committed files hold every record");
    let stopped = support::terminate(running);
    assert!(stopped.status.success());
    assert_eq!(archive_summary(&stopped).records_archived, sent);
    assert_eq!(
        archive_summary(&stopped).files_finished,
        aged.len() as u64,
        "nothing left to finish at shutdown"
    );

    // The archive folder replayed as it is, into a second topic set.
    let second = create_topics(&format!("{prefix}-b-")).await;
    let replayed = producer_summary(&run(support::producer_command()
        .arg("--replay")
        .arg(&archive)
        .args(topic_flags(&second))
        .arg("--metrics-addr=off")));
    assert_eq!(replayed.lines_read, sent);
    assert_eq!(replayed.keepalives, 0);
    assert_eq!(replayed.failed, 0);
    assert!(
        values(&second, sent as usize) == originals,
        "values replayed from the archive folder differ from the originals"
    );

    // The first file alone, then the others concatenated (gzip members in a row), into a third.
    let third = create_topics(&format!("{prefix}-c-")).await;
    let mut first_file = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&files[0]).expect("archive file"))
        .read_to_string(&mut first_file)
        .expect("gzip JSON lines");
    let one = producer_summary(&run(support::producer_command()
        .arg("--replay")
        .arg(&files[0])
        .args(topic_flags(&third))
        .arg("--metrics-addr=off")));
    assert_eq!(one.lines_read, first_file.lines().count() as u64);
    let mut rest = Vec::new();
    for file in &files[1..] {
        rest.extend(std::fs::read(file).expect("archive file"));
    }
    let concatenated = dir.path().join("rest.jsonl.gz");
    std::fs::write(&concatenated, rest).expect("concatenate");
    let others = producer_summary(&run(support::producer_command()
        .arg("--replay")
        .arg(&concatenated)
        .args(topic_flags(&third))
        .arg("--metrics-addr=off")));
    assert_eq!(one.lines_read + others.lines_read, sent);
    assert!(
        values(&third, sent as usize) == originals,
        "values replayed from the archive files differ from the originals"
    );

    delete_topics(&original).await;
    delete_topics(&second).await;
    delete_topics(&third).await;
}
