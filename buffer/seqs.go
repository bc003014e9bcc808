package buffer

// LastSeq is the highest seq the buffer has assigned (or been raised to by
// EnsureAbove): what the uplink promises in its retained status.
func (b *Buffer) LastSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ctr.LastSeq
}

// SeqBase is the seq the file's numbering started above: it names the file,
// so the uplink can tell its own retained status from another file's.
func (b *Buffer) SeqBase() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ctr.Base
}
