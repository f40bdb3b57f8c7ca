"""vam.delivery: what the origin needs below the step layer: playback tokens (signing), byte
ranges read from any object store (reader), and the HTTP rules of serving media (media types,
cache lifetimes, Range and ETag parsing). Never imports the catalog."""
