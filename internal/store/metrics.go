package store

// measureRebuild counts a rebuild of the index and reports it running
// until the returned function is called.
func (s *Store) measureRebuild() (done func()) {
	s.opts.Metrics.IndexRebuilds.Inc()
	s.opts.Metrics.IndexRebuilding.Inc()
	return s.opts.Metrics.IndexRebuilding.Dec
}
