//! Reading an object piece by piece: what a server sends a file too large to hold in memory
//! with. Memory per reader is one chunk ([`CHUNK`]) plus what the caller buffers, whatever the
//! object's size and however slowly the reader takes it.

use std::ops::Range;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

use crate::{Meta, StoreError};

/// The most read from the backend at once.
pub const CHUNK: usize = 64 * 1024;

/// An object's bytes, in order, as they are read.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send>>;

/// An object opened for streaming.
pub struct ObjectStream {
    /// The object's identity: the bytes that follow are this version's.
    pub meta: Meta,
    /// The requested range of its bytes (all of them without a range).
    pub body: ByteStream,
}

impl std::fmt::Debug for ObjectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStream")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// The answer to [`crate::Store::stream`].
#[derive(Debug)]
pub enum Opened {
    /// The object, at the version asked for (if one was).
    Found(ObjectStream),
    /// It no longer carries the version asked for.
    Changed,
    /// There is no such object.
    Missing,
}

/// Which bytes of an object to send: a `start..end` range, or all.
pub type ByteRange = Option<Range<u64>>;
