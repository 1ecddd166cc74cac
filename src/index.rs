//! Segments, postings and merges. PLACEHOLDER.
