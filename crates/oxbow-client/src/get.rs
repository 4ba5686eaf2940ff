//! Reading GetMedia output: one MKV document per fragment, back to back. [`ChunkReader`]
//! walks them as one event stream; [`SegmentMerger`] rewrites them as a single Segment that
//! ordinary players (ffplay, mpv) accept from a pipe.

use bytes::Bytes;
use oxbow_mkv::{ids, write, Event, MkvError, MkvParser};

/// Parses concatenated MKV documents.
#[derive(Default)]
pub struct ChunkReader {
    parser: MkvParser,
}

impl ChunkReader {
    pub fn push(&mut self, data: &[u8]) {
        self.parser.push(data);
    }

    pub fn next_event(&mut self) -> Result<Option<Event>, MkvError> {
        loop {
            match self.parser.next_event() {
                Err(MkvError::SecondSegment) => self.parser.restart(),
                other => return other,
            }
        }
    }

    /// Events left when the input ends.
    pub fn finish(&mut self) -> Result<Vec<Event>, MkvError> {
        let mut events = Vec::new();
        while let Some(e) = self.next_event()? {
            events.push(e);
        }
        events.extend(self.parser.finish()?.0);
        Ok(events)
    }
}

/// Writes GetMedia events as one MKV Segment, starting a new document only if the tracks
/// change.
#[derive(Default)]
pub struct SegmentMerger {
    tracks: Option<Bytes>,
    /// Tags seen before the first header, written right after it.
    early: Vec<u8>,
}

impl SegmentMerger {
    pub fn event(&mut self, event: &Event) -> Option<Bytes> {
        match event {
            Event::Header(h) => {
                if self.tracks.as_ref() == Some(&h.tracks) {
                    return None;
                }
                self.tracks = Some(h.tracks.clone());
                let mut out = h.ebml.to_vec();
                out.extend(write::unknown_size(ids::SEGMENT));
                out.extend_from_slice(&h.info);
                out.extend_from_slice(&h.tracks);
                out.append(&mut self.early);
                Some(Bytes::from(out))
            }
            Event::ClusterStart { timecode } => {
                let mut out = write::unknown_size(ids::CLUSTER);
                out.extend(write::uint(ids::TIMECODE, *timecode));
                Some(Bytes::from(out))
            }
            Event::Frame(f) => Some(f.element.clone()),
            Event::ClusterEnd => None,
            Event::Tags(tags) => {
                let pairs: Vec<(&str, &str)> =
                    tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let bytes = write::tags(&pairs);
                if self.tracks.is_none() {
                    self.early.extend(bytes);
                    return None;
                }
                Some(Bytes::from(bytes))
            }
        }
    }
}
