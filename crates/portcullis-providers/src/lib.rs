//! portcullis-providers
