//! The parser against streams shaped like the KVS producer SDK's: unknown-size Segment and
//! Clusters, level-1 Tags between Clusters, BlockGroups, and input split at every byte.

use oxbow_mkv::ids::*;
use oxbow_mkv::write::*;
use oxbow_mkv::{Event, MkvError, MkvParser};

fn header() -> Vec<u8> {
    let mut s = ebml_header();
    s.extend(unknown_size(SEGMENT));
    s.extend(info(1_000_000, "Kinesis Video SDK"));
    s.extend(tracks(&[
        (1, 1, "V_MPEG4/ISO/AVC", &[1, 2, 3]),
        (2, 2, "A_AAC", &[0x12, 0x10]),
    ]));
    s
}

/// Two fragments: an unknown-size Cluster closed by an END_OF_FRAGMENT Tags element, then a
/// sized Cluster with a BlockGroup, then a metadata Tags element.
fn stream() -> Vec<u8> {
    let mut s = header();
    s.extend(unknown_size(CLUSTER));
    s.extend(uint(TIMECODE, 1_700_000_000_000));
    s.extend(simple_block(1, 0, true, &[0xAA; 100]));
    s.extend(simple_block(2, 5, true, &[0xBB; 10]));
    s.extend(simple_block(1, 33, false, &[0xCC; 50]));
    s.extend(tags(&[("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")]));
    let mut cluster = uint(TIMECODE, 1_700_000_002_000);
    cluster.extend(element(BLOCK_GROUP, &{
        let mut g = element(BLOCK, &simple_block(1, 0, false, &[0xDD; 20])[2..]);
        g.extend(uint(REFERENCE_BLOCK, 1));
        g
    }));
    cluster.extend(simple_block(2, 7, true, &[0xEE; 8]));
    s.extend(element(CLUSTER, &cluster));
    s.extend(tags(&[
        ("camera", "porch"),
        ("AWS_KINESISVIDEO_NOTIFICATION", ""),
    ]));
    s
}

fn summarize(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Header(h) => format!(
                "header scale={} tracks={:?}",
                h.timecode_scale_ns,
                h.track_list
                    .iter()
                    .map(|t| (t.number, t.codec_id.clone()))
                    .collect::<Vec<_>>()
            ),
            Event::ClusterStart { timecode } => format!("cluster {timecode}"),
            Event::Frame(f) => format!(
                "frame t{} {:+} key={} len={}",
                f.track,
                f.relative_timecode,
                f.keyframe,
                f.element.len()
            ),
            Event::ClusterEnd => "end".to_string(),
            Event::Tags(t) => format!("tags {t:?}"),
        })
        .collect()
}

fn parse_in_chunks(data: &[u8], chunk: usize) -> Result<Vec<Event>, MkvError> {
    let mut p = MkvParser::new();
    let mut events = Vec::new();
    for piece in data.chunks(chunk) {
        p.push(piece);
        while let Some(e) = p.next_event()? {
            events.push(e);
        }
    }
    let (rest, truncated) = p.finish()?;
    assert!(!truncated);
    events.extend(rest);
    Ok(events)
}

#[test]
fn producer_shaped_stream() {
    let events = parse_in_chunks(&stream(), 1 << 20).unwrap();
    let expected = [
        "header scale=1000000 tracks=[(1, \"V_MPEG4/ISO/AVC\"), (2, \"A_AAC\")]",
        "cluster 1700000000000",
        "frame t1 +0 key=true len=106",
        "frame t2 +5 key=true len=16",
        "frame t1 +33 key=false len=56",
        "end",
        "tags [(\"AWS_KINESISVIDEO_END_OF_FRAGMENT\", \"\")]",
        "cluster 1700000002000",
        "frame t1 +0 key=false len=31",
        "frame t2 +7 key=true len=14",
        "end",
        "tags [(\"camera\", \"porch\"), (\"AWS_KINESISVIDEO_NOTIFICATION\", \"\")]",
    ];
    assert_eq!(summarize(&events), expected);
}

#[test]
fn any_split_gives_the_same_events() {
    let data = stream();
    let whole = summarize(&parse_in_chunks(&data, data.len()).unwrap());
    for chunk in [1, 2, 3, 7, 64, 333] {
        assert_eq!(
            summarize(&parse_in_chunks(&data, chunk).unwrap()),
            whole,
            "chunk {chunk}"
        );
    }
}

#[test]
fn frames_are_the_original_bytes() {
    let data = stream();
    let events = parse_in_chunks(&data, 5).unwrap();
    let Event::Frame(f) = &events[2] else {
        panic!()
    };
    assert_eq!(&f.element[..], &simple_block(1, 0, true, &[0xAA; 100])[..]);
}

#[test]
fn truncated_input_is_reported() {
    let data = stream();
    let mut p = MkvParser::new();
    p.push(&data[..data.len() - 5]);
    while p.next_event().unwrap().is_some() {}
    let (_, truncated) = p.finish().unwrap();
    assert!(truncated);
}

#[test]
fn malformed_streams() {
    let mut not_ebml = vec![0x42, 0x86, 0x81, 0x01];
    not_ebml.extend(stream());
    assert!(parse_in_chunks(&not_ebml, 100).is_err());

    let mut early_cluster = ebml_header();
    early_cluster.extend(unknown_size(SEGMENT));
    early_cluster.extend(element(CLUSTER, &uint(TIMECODE, 1)));
    assert!(matches!(
        parse_in_chunks(&early_cluster, 100),
        Err(MkvError::Invalid(_))
    ));

    let mut two = stream();
    two.extend(stream());
    assert_eq!(
        parse_in_chunks(&two, 100).unwrap_err(),
        MkvError::SecondSegment
    );

    let mut block_first = header();
    block_first.extend(unknown_size(CLUSTER));
    block_first.extend(simple_block(1, 0, true, &[1]));
    assert!(parse_in_chunks(&block_first, 100).is_err());

    let mut garbage = header();
    garbage.extend([0x00, 0x00, 0x00, 0x00]);
    assert!(parse_in_chunks(&garbage, 100).is_err());

    let mut huge = header();
    huge.extend([0x1F, 0x43, 0xB6, 0x75]);
    huge.extend(uint(TIMECODE, 0));
    huge.extend([0xA3, 0x01, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00]);
    assert!(parse_in_chunks(&huge, 100).is_err());
}

/// GetMedia consumers read one MKV document per fragment, back to back.
#[test]
fn restart_reads_the_next_document() {
    let mut two = stream();
    two.extend(stream());
    let mut p = MkvParser::new();
    p.push(&two);
    let mut headers = 0;
    let mut frames = 0;
    loop {
        match p.next_event() {
            Ok(Some(Event::Header(_))) => headers += 1,
            Ok(Some(Event::Frame(_))) => frames += 1,
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(MkvError::SecondSegment) => p.restart(),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((headers, frames), (2, 10));
}
