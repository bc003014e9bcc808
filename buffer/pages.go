package buffer

import (
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// Pages is where the file's flash goes, in bbolt's own numbers: what a
// benchmark of bytes written per reading needs to say which pages a commit
// rewrites and why (a records tree one level deeper is a page more a commit).
type Pages struct {
	PageSize int
	Commits  uint64 // committer transactions since Open
	Writes   int64  // page writes since Open (meta pages included; a multi-page node counts once)
	// The newest records and the journal ("records", the tree a commit
	// appends to), and the older records ("backlog"): see backlog.go.
	Depth        int // levels of the tree a commit appends to
	BacklogDepth int
	LeafPages    int // of both
	BranchPages  int
	LeafInuse    int // bytes of the leaf pages in use (LeafInuse / (LeafPages*PageSize) is their fill)
	Journal      int // journal entries held
}

// Pages walks the records tree (a full walk: a diagnostic, not for a hot path).
func (b *Buffer) Pages() (p Pages, err error) {
	if b.isClosed() {
		return p, ErrClosed
	}
	db := b.dbh()
	p.PageSize = db.Info().PageSize
	p.Commits = b.commits.Load()
	st := db.Stats()
	p.Writes = st.TxStats.GetWrite()
	p.Journal = len(b.journalKeys())
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer b.guard(&err)
	err = db.View(func(tx *bolt.Tx) error {
		s := tx.Bucket(bucketRecords).Stats()
		p.Depth = s.Depth
		if old := tx.Bucket(bucketBacklog); old != nil {
			o := old.Stats()
			p.BacklogDepth = o.Depth
			s.Add(o)
		}
		p.LeafPages, p.BranchPages, p.LeafInuse = s.LeafPageN, s.BranchPageN, s.LeafInuse
		return nil
	})
	return p, err
}
