//! Sources: where indicators come from (SPEC §5). [`fetch`] gets the bytes, [`threatfox`] reads them into
//! upstream [`threatfox::Report`]s; normalising and storing them is the pull's job.

pub mod api;
pub mod fetch;
pub mod json;
pub mod text;
pub mod threatfox;
