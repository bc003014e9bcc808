package buffer

// Format is the file format this build writes (meta/format) and the newest
// it reads: a file of a higher format is refused with ErrNewerFormat. The
// packages' scripts compare it across versions to refuse a downgrade that
// would strand a buffer (`tidegate version` prints it).
const Format = fileFormat
