//! The top-level elements of a message as a binary serializer's split finds them: each
//! element scanned in turn and its byte range kept, until the first one that is
//! well-formed but invalid, which ends the split with its problem (so that the header
//! before it can still be read).

use std::ops::Range;

use super::error::{DecodeError, PayloadError};

pub(super) struct Elements {
    pub ranges: Vec<Range<usize>>,
    /// Where the next element starts.
    pub pos: usize,
}

impl Elements {
    pub fn starting_at(pos: usize, capacity: usize) -> Elements {
        Elements { ranges: Vec::with_capacity(capacity), pos }
    }

    /// Scans the element at `pos` with `scan` (which returns its length); returns the
    /// problem of an invalid element, which ends the split.
    pub fn scan_next(
        &mut self,
        frame: &[u8],
        scan: impl Fn(&[u8]) -> Result<usize, DecodeError>,
    ) -> Result<Option<PayloadError>, DecodeError> {
        match scan(&frame[self.pos..]) {
            Ok(n) => {
                self.ranges.push(self.pos..self.pos + n);
                self.pos += n;
                Ok(None)
            }
            Err(DecodeError::Invalid(problem)) => Ok(Some(problem)),
            Err(e) => Err(e),
        }
    }

    /// The split when every element was read: nothing may follow the message.
    pub fn finish(self, frame: &[u8], serializer: &'static str) -> Result<(Vec<Range<usize>>, Option<PayloadError>), DecodeError> {
        if self.pos != frame.len() {
            return Err(DecodeError::malformed(serializer, "trailing bytes after the message"));
        }
        Ok((self.ranges, None))
    }
}
