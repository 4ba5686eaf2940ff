//! The push parser. State moves Start → Segment ⇄ Cluster; every complete element is cut out
//! of the input buffer with `split_to`, so frames and header parts share the request's memory.

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

use crate::ids::*;
use crate::vint::{self, Read};

/// Largest single element accepted (a frame, or a header element). Fragments are capped at
/// 50 MB by KVS, so no legal frame is larger.
pub const MAX_ELEMENT: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MkvError {
    #[error("invalid MKV: {0}")]
    Invalid(String),
    #[error("more than one MKV segment in the stream")]
    SecondSegment,
    #[error("element of {0} bytes is larger than the limit")]
    TooLarge(u64),
}

fn invalid(msg: impl Into<String>) -> MkvError {
    MkvError::Invalid(msg.into())
}

/// A track as declared in Tracks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackInfo {
    pub number: u64,
    /// 1 video, 2 audio (Matroska TrackType).
    pub track_type: u64,
    pub codec_id: String,
    /// CodecPrivate as sent: the AVC/HEVC decoder configuration record, the AAC
    /// AudioSpecificConfig, ...
    pub codec_private: Option<Bytes>,
    /// Video: PixelWidth and PixelHeight.
    pub pixels: Option<(u64, u64)>,
    /// Audio: SamplingFrequency (Hz) and Channels.
    pub audio: Option<(u32, u64)>,
    /// DefaultDuration, ns per frame, when declared.
    pub default_duration_ns: Option<u64>,
}

/// A frame's payload and place, read from a SimpleBlock or BlockGroup element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockData {
    pub track: u64,
    pub relative_timecode: i16,
    /// The coded frame (the block without lacing).
    pub payload: Bytes,
}

/// Reads a whole SimpleBlock or BlockGroup element (as [`Frame::element`] holds it). Laced
/// blocks are refused: KVS producers never lace, and a packager needs one frame per block.
pub fn block_data(element: &Bytes) -> Result<BlockData, MkvError> {
    let (id, id_len) = match vint::read_id(element) {
        Read::Done(id, n) => (id, n),
        _ => return Err(invalid("bad block element")),
    };
    let (size, size_len) = match vint::read_size(&element[id_len..]) {
        Read::Done(Some(s), n) => (s as usize, n),
        _ => return Err(invalid("bad block element size")),
    };
    let start = id_len + size_len;
    let end = start
        .checked_add(size)
        .filter(|e| *e <= element.len())
        .ok_or_else(|| invalid("block element overruns its data"))?;
    let block = match id {
        SIMPLE_BLOCK => start..end,
        BLOCK_GROUP => {
            let (_, _, inner) = child_spans(&element[start..end])?
                .into_iter()
                .find(|(id, _, _)| *id == BLOCK)
                .ok_or_else(|| invalid("BlockGroup without a Block"))?;
            start + inner.start..start + inner.end
        }
        _ => return Err(invalid("not a block")),
    };
    let (track, rel, flags) = block_head(&element[block.clone()])?;
    if flags & 0x06 != 0 {
        return Err(invalid("laced blocks are not supported"));
    }
    let track_len = match vint::read_size(&element[block.clone()]) {
        Read::Done(_, n) => n,
        _ => return Err(invalid("bad block track number")),
    };
    Ok(BlockData {
        track,
        relative_timecode: rel,
        payload: element.slice(block.start + track_len + 3..block.end),
    })
}

/// The stream header: everything before the first Cluster that a consumer needs to decode.
#[derive(Debug, Clone)]
pub struct Header {
    /// The EBML header element, as sent.
    pub ebml: Bytes,
    /// The Info element, as sent.
    pub info: Bytes,
    /// The Tracks element, as sent.
    pub tracks: Bytes,
    /// Nanoseconds per timecode unit (Matroska default 1,000,000).
    pub timecode_scale_ns: u64,
    pub track_list: Vec<TrackInfo>,
}

/// One SimpleBlock or BlockGroup.
#[derive(Debug, Clone)]
pub struct Frame {
    pub track: u64,
    /// Timecode relative to the Cluster's, in timecode units.
    pub relative_timecode: i16,
    pub keyframe: bool,
    /// The whole element (ID, size, body), ready to be written into a Cluster again.
    pub element: Bytes,
}

#[derive(Debug, Clone)]
pub enum Event {
    /// Info and Tracks have been read; comes before the first Cluster.
    Header(Header),
    /// A Cluster started; `timecode` is its Timecode value in timecode units.
    ClusterStart {
        timecode: u64,
    },
    Frame(Frame),
    /// The current Cluster ended (next level-1 element, its size reached, or end of input).
    ClusterEnd,
    /// A level-1 Tags element: its SimpleTag (name, value) pairs in order.
    Tags(Vec<(String, String)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    BeforeSegment,
    Segment,
    /// Inside a Cluster; `end` is the absolute offset where a sized Cluster ends.
    Cluster {
        end: Option<u64>,
        timecode_seen: bool,
    },
}

pub struct MkvParser {
    buf: BytesMut,
    /// Absolute offset of `buf[0]` in the stream.
    offset: u64,
    state: State,
    segment_end: Option<u64>,
    ebml: Option<Bytes>,
    info: Option<Bytes>,
    tracks: Option<Bytes>,
    header_sent: bool,
    /// Largest element accepted (a Cluster's frames count one by one).
    max_element: u64,
    /// The header of an earlier document of the same stream, for input that goes on with
    /// Clusters without repeating it (see [`MkvParser::resume_with`]).
    resume: Option<(Bytes, Bytes, Bytes)>,
}

impl Default for MkvParser {
    fn default() -> Self {
        Self::new()
    }
}

/// An element header seen at the front of the buffer.
struct Head {
    id: u32,
    size: Option<u64>,
    header_len: usize,
}

impl MkvParser {
    pub fn new() -> Self {
        Self {
            buf: BytesMut::new(),
            offset: 0,
            state: State::Start,
            segment_end: None,
            ebml: None,
            info: None,
            tracks: None,
            header_sent: false,
            max_element: MAX_ELEMENT,
            resume: None,
        }
    }

    /// Refuses elements larger than `bytes` with [`MkvError::TooLarge`] before buffering them.
    pub fn with_max_element(mut self, bytes: u64) -> Self {
        self.max_element = bytes;
        self
    }

    /// Lets input that starts with a Cluster or Tags instead of an EBML header go on under
    /// this earlier header (`ebml` element; `segment_head`: Info and Tracks, back to back).
    /// The KVS producer SDK sends such a body when it reconnects and its buffer holds no
    /// stream start to replay. Ignored if the input does start with an EBML header.
    pub fn resume_with(&mut self, ebml: Bytes, segment_head: Bytes) -> Result<(), MkvError> {
        let mut info = None;
        let mut tracks = None;
        for (id, whole, _) in child_spans(&segment_head)? {
            match id {
                INFO => info = Some(segment_head.slice(whole)),
                TRACKS => tracks = Some(segment_head.slice(whole)),
                _ => {}
            }
        }
        match (info, tracks) {
            (Some(info), Some(tracks)) => {
                self.resume = Some((ebml, info, tracks));
                Ok(())
            }
            _ => Err(invalid("stored header lacks Info or Tracks")),
        }
    }

    /// Starts reading a new MKV document from the buffered input, after
    /// [`MkvError::SecondSegment`]: consumers of GetMedia read one document per fragment.
    pub fn restart(&mut self) {
        self.state = State::Start;
        self.segment_end = None;
        self.ebml = None;
        self.info = None;
        self.tracks = None;
        self.header_sent = false;
    }

    /// Appends input.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet returned in an event.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next event, `Ok(None)` when more input is needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, MkvError> {
        loop {
            let progressed = match self.state {
                State::Start => self.read_ebml_header()?,
                State::BeforeSegment => self.read_segment_start()?,
                State::Segment => return self.read_level1(),
                State::Cluster { .. } => return self.read_cluster_child(),
            };
            if !progressed {
                return Ok(None);
            }
        }
    }

    /// Ends the input: closes an open Cluster. Returns the last events and whether input ended
    /// inside an element (a truncated stream).
    pub fn finish(&mut self) -> Result<(Vec<Event>, bool), MkvError> {
        let mut events = Vec::new();
        while let Some(e) = self.next_event()? {
            events.push(e);
        }
        if let State::Cluster { timecode_seen, .. } = self.state {
            if let Some(e) = self.end_cluster(timecode_seen)? {
                events.push(e);
            }
        }
        Ok((events, !self.buf.is_empty()))
    }

    fn head(&self) -> Result<Option<Head>, MkvError> {
        let id = match vint::read_id(&self.buf) {
            Read::Done(id, n) => (id, n),
            Read::NeedMore => return Ok(None),
            Read::Invalid => {
                return Err(invalid(format!("bad element ID at offset {}", self.offset)))
            }
        };
        match vint::read_size(&self.buf[id.1..]) {
            Read::Done(size, n) => Ok(Some(Head {
                id: id.0,
                size,
                header_len: id.1 + n,
            })),
            Read::NeedMore => Ok(None),
            Read::Invalid => Err(invalid(format!(
                "bad element size at offset {}",
                self.offset
            ))),
        }
    }

    fn take(&mut self, n: usize) -> Bytes {
        self.offset += n as u64;
        self.buf.split_to(n).freeze()
    }

    fn skip(&mut self, n: usize) {
        self.offset += n as u64;
        self.buf.advance(n);
    }

    /// Takes a whole sized element once it is buffered: `(element, body offset)`.
    fn take_element(&mut self, head: &Head) -> Result<Option<(Bytes, usize)>, MkvError> {
        let size = head
            .size
            .ok_or_else(|| invalid(format!("element {:X} has unknown size", head.id)))?;
        if size > self.max_element {
            return Err(MkvError::TooLarge(size));
        }
        let total = head.header_len + size as usize;
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        Ok(Some((self.take(total), head.header_len)))
    }

    fn read_ebml_header(&mut self) -> Result<bool, MkvError> {
        let Some(head) = self.head()? else {
            return Ok(false);
        };
        if head.id != EBML {
            if matches!(head.id, CLUSTER | TAGS) {
                if let Some((ebml, info, tracks)) = self.resume.take() {
                    self.ebml = Some(ebml);
                    self.info = Some(info);
                    self.tracks = Some(tracks);
                    self.state = State::Segment;
                    return Ok(true);
                }
            }
            return Err(invalid("stream does not start with an EBML header"));
        }
        let Some((el, body)) = self.take_element(&head)? else {
            return Ok(false);
        };
        if let Some(doc_type) = children(&el[body..])?
            .into_iter()
            .find(|(id, _)| *id == DOC_TYPE)
            .map(|(_, v)| {
                String::from_utf8_lossy(v)
                    .trim_end_matches('\0')
                    .to_string()
            })
        {
            if doc_type != "matroska" && doc_type != "webm" {
                return Err(invalid(format!("DocType {doc_type} is not matroska")));
            }
        }
        self.ebml = Some(el);
        self.state = State::BeforeSegment;
        Ok(true)
    }

    fn read_segment_start(&mut self) -> Result<bool, MkvError> {
        let Some(head) = self.head()? else {
            return Ok(false);
        };
        match head.id {
            SEGMENT => {
                self.skip(head.header_len);
                self.segment_end = head.size.map(|s| self.offset + s);
                self.state = State::Segment;
                Ok(true)
            }
            VOID | CRC32 => Ok(self.take_element(&head)?.is_some()),
            _ => Err(invalid("expected a Segment after the EBML header")),
        }
    }

    fn read_level1(&mut self) -> Result<Option<Event>, MkvError> {
        loop {
            if self.segment_end.is_some_and(|end| self.offset >= end) {
                // A sized Segment is over; anything after it is a second document.
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(MkvError::SecondSegment);
            }
            let Some(head) = self.head()? else {
                return Ok(None);
            };
            match head.id {
                EBML | SEGMENT => return Err(MkvError::SecondSegment),
                CLUSTER => {
                    let header = self.header_event()?;
                    self.skip(head.header_len);
                    self.state = State::Cluster {
                        end: head.size.map(|s| self.offset + s),
                        timecode_seen: false,
                    };
                    if let Some(h) = header {
                        return Ok(Some(Event::Header(h)));
                    }
                    return self.read_cluster_child();
                }
                _ => {
                    let Some((el, body)) = self.take_element(&head)? else {
                        return Ok(None);
                    };
                    match head.id {
                        INFO => self.info = Some(el),
                        TRACKS => self.tracks = Some(el),
                        TAGS => return Ok(Some(Event::Tags(simple_tags(&el[body..])?))),
                        _ => {}
                    }
                    // Announce the header as soon as it is complete, so it precedes any
                    // Tags that come before the first Cluster (as in GetMedia chunks).
                    let header_done = self.info.is_some() && self.tracks.is_some();
                    if matches!(head.id, INFO | TRACKS) && header_done {
                        if let Some(h) = self.header_event()? {
                            return Ok(Some(Event::Header(h)));
                        }
                    }
                }
            }
        }
    }

    /// The Header event, the first time a Cluster is reached.
    fn header_event(&mut self) -> Result<Option<Header>, MkvError> {
        if self.header_sent {
            return Ok(None);
        }
        let (Some(ebml), Some(info), Some(tracks)) =
            (self.ebml.clone(), self.info.clone(), self.tracks.clone())
        else {
            return Err(invalid("a Cluster arrived before Info and Tracks"));
        };
        let info_body = body_of(&info)?;
        let timecode_scale_ns = children(info_body)?
            .into_iter()
            .find(|(id, _)| *id == TIMECODE_SCALE)
            .and_then(|(_, v)| vint::uint(v))
            .unwrap_or(1_000_000);
        if timecode_scale_ns == 0 {
            return Err(invalid("TimecodeScale is 0"));
        }
        let track_list = parse_tracks(body_of(&tracks)?)?;
        if track_list.is_empty() {
            return Err(invalid("Tracks declares no track"));
        }
        self.header_sent = true;
        Ok(Some(Header {
            ebml,
            info,
            tracks,
            timecode_scale_ns,
            track_list,
        }))
    }

    /// A Cluster ends; one that never gave its Timecode is not a fragment.
    fn end_cluster(&mut self, timecode_seen: bool) -> Result<Option<Event>, MkvError> {
        self.state = State::Segment;
        if !timecode_seen {
            return Err(invalid("a Cluster ended without a Timecode"));
        }
        Ok(Some(Event::ClusterEnd))
    }

    fn read_cluster_child(&mut self) -> Result<Option<Event>, MkvError> {
        loop {
            let State::Cluster { end, timecode_seen } = self.state else {
                return self.read_level1();
            };
            if end.is_some_and(|e| self.offset >= e) {
                return self.end_cluster(timecode_seen);
            }
            let Some(head) = self.head()? else {
                return Ok(None);
            };
            if end.is_none() && (is_level1(head.id) || head.id == EBML || head.id == SEGMENT) {
                return self.end_cluster(timecode_seen);
            }
            let Some((el, body)) = self.take_element(&head)? else {
                return Ok(None);
            };
            match head.id {
                TIMECODE => {
                    let tc =
                        vint::uint(&el[body..]).ok_or_else(|| invalid("bad Cluster Timecode"))?;
                    self.state = State::Cluster {
                        end,
                        timecode_seen: true,
                    };
                    return Ok(Some(Event::ClusterStart { timecode: tc }));
                }
                SIMPLE_BLOCK | BLOCK_GROUP if !timecode_seen => {
                    return Err(invalid("a block came before the Cluster Timecode"));
                }
                SIMPLE_BLOCK => {
                    let (track, rel, flags) = block_head(&el[body..])?;
                    return Ok(Some(Event::Frame(Frame {
                        track,
                        relative_timecode: rel,
                        keyframe: flags & 0x80 != 0,
                        element: el,
                    })));
                }
                BLOCK_GROUP => {
                    let kids = children(&el[body..])?;
                    let block = kids
                        .iter()
                        .find(|(id, _)| *id == BLOCK)
                        .ok_or_else(|| invalid("BlockGroup without a Block"))?;
                    let (track, rel, _) = block_head(block.1)?;
                    let keyframe = !kids.iter().any(|(id, _)| *id == REFERENCE_BLOCK);
                    return Ok(Some(Event::Frame(Frame {
                        track,
                        relative_timecode: rel,
                        keyframe,
                        element: el,
                    })));
                }
                _ => {}
            }
        }
    }
}

/// The body of a complete element.
fn body_of(el: &[u8]) -> Result<&[u8], MkvError> {
    let id_len = match vint::read_id(el) {
        Read::Done(_, n) => n,
        _ => return Err(invalid("bad element")),
    };
    match vint::read_size(&el[id_len..]) {
        Read::Done(_, n) => Ok(&el[id_len + n..]),
        _ => Err(invalid("bad element")),
    }
}

/// The direct children of a master element's body: (id, body).
fn children(body: &[u8]) -> Result<Vec<(u32, &[u8])>, MkvError> {
    Ok(child_spans(body)?
        .into_iter()
        .map(|(id, _, inner)| (id, &body[inner]))
        .collect())
}

/// A child element within its parent's body: (id, the whole child, the child's body).
type ChildSpan = (u32, Range<usize>, Range<usize>);

/// The direct children of a master element's body, as ranges of it.
fn child_spans(body: &[u8]) -> Result<Vec<ChildSpan>, MkvError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let rest = &body[at..];
        let (id, id_len) = match vint::read_id(rest) {
            Read::Done(id, n) => (id, n),
            _ => return Err(invalid("bad child element ID")),
        };
        let (size, size_len) = match vint::read_size(&rest[id_len..]) {
            Read::Done(Some(s), n) => (s as usize, n),
            _ => return Err(invalid("bad child element size")),
        };
        let start = at + id_len + size_len;
        let end = start
            .checked_add(size)
            .filter(|e| *e <= body.len())
            .ok_or_else(|| invalid("child element overruns its parent"))?;
        out.push((id, at..end, start..end));
        at = end;
    }
    Ok(out)
}

fn parse_tracks(body: &[u8]) -> Result<Vec<TrackInfo>, MkvError> {
    let mut tracks = Vec::new();
    for (id, entry) in children(body)? {
        if id != TRACK_ENTRY {
            continue;
        }
        let fields = children(entry)?;
        let uint_of = |want: u32| {
            fields
                .iter()
                .find(|(i, _)| *i == want)
                .and_then(|(_, v)| vint::uint(v))
        };
        let number =
            uint_of(TRACK_NUMBER).ok_or_else(|| invalid("TrackEntry without TrackNumber"))?;
        let child = |want: u32| fields.iter().find(|(i, _)| *i == want).map(|(_, v)| *v);
        let pixels = match child(VIDEO).map(children).transpose()? {
            Some(video) => {
                let get = |want: u32| {
                    video
                        .iter()
                        .find(|(i, _)| *i == want)
                        .and_then(|(_, v)| vint::uint(v))
                };
                get(PIXEL_WIDTH).zip(get(PIXEL_HEIGHT))
            }
            None => None,
        };
        let audio = match child(AUDIO).map(children).transpose()? {
            Some(audio) => {
                let rate = audio
                    .iter()
                    .find(|(i, _)| *i == SAMPLING_FREQUENCY)
                    .and_then(|(_, v)| float(v))
                    .map(|hz| hz.round() as u32)
                    .unwrap_or(8000);
                let channels = audio
                    .iter()
                    .find(|(i, _)| *i == CHANNELS)
                    .and_then(|(_, v)| vint::uint(v))
                    .unwrap_or(1);
                Some((rate, channels))
            }
            None => None,
        };
        let codec_id = fields
            .iter()
            .find(|(i, _)| *i == CODEC_ID)
            .map(|(_, v)| {
                String::from_utf8_lossy(v)
                    .trim_end_matches('\0')
                    .to_string()
            })
            .unwrap_or_default();
        tracks.push(TrackInfo {
            number,
            track_type: uint_of(TRACK_TYPE).unwrap_or(0),
            codec_id,
            codec_private: child(CODEC_PRIVATE).map(Bytes::copy_from_slice),
            pixels,
            audio,
            default_duration_ns: uint_of(DEFAULT_DURATION),
        });
    }
    Ok(tracks)
}

/// A Matroska float element body (4 or 8 bytes, big-endian).
fn float(body: &[u8]) -> Option<f64> {
    match body.len() {
        4 => Some(f64::from(f32::from_be_bytes(body.try_into().ok()?))),
        8 => Some(f64::from_be_bytes(body.try_into().ok()?)),
        _ => None,
    }
}

/// Track number, relative timecode and flags of a (Simple)Block body.
fn block_head(body: &[u8]) -> Result<(u64, i16, u8), MkvError> {
    let (track, n) = match vint::read_size(body) {
        Read::Done(Some(t), n) => (t, n),
        _ => return Err(invalid("bad block track number")),
    };
    if body.len() < n + 3 {
        return Err(invalid("block too short"));
    }
    let rel = i16::from_be_bytes([body[n], body[n + 1]]);
    Ok((track, rel, body[n + 2]))
}

/// Every SimpleTag (name, string value) in a Tags body, depth-first.
fn simple_tags(body: &[u8]) -> Result<Vec<(String, String)>, MkvError> {
    let mut out = Vec::new();
    for (id, tag) in children(body)? {
        if id == TAG {
            for (cid, child) in children(tag)? {
                if cid == SIMPLE_TAG {
                    collect_simple_tag(child, &mut out)?;
                }
            }
        }
    }
    Ok(out)
}

fn collect_simple_tag(body: &[u8], out: &mut Vec<(String, String)>) -> Result<(), MkvError> {
    let fields = children(body)?;
    let text = |want: u32| {
        fields.iter().find(|(i, _)| *i == want).map(|(_, v)| {
            String::from_utf8_lossy(v)
                .trim_end_matches('\0')
                .to_string()
        })
    };
    if let Some(name) = text(TAG_NAME) {
        out.push((name, text(TAG_STRING).unwrap_or_default()));
    }
    for (id, nested) in fields {
        if id == SIMPLE_TAG {
            collect_simple_tag(nested, out)?;
        }
    }
    Ok(())
}
