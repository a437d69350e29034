package dynamo

// SetMaxOutboxBytes lowers the outbox limit, so a test fills it quickly.
func (s *Store) SetMaxOutboxBytes(n int) { s.maxOutboxBytes = n }
