package dynamo

// SetMaxOutboxBytes lowers the outbox limit, so a test fills it quickly.
func (s *Store) SetMaxOutboxBytes(n int) { s.maxOutboxBytes = n }

// SpillAt is how many remembered event ids make an Ack spill them.
const SpillAt = spillAt

// DeliveryKey is the key of a session's delivery item.
var DeliveryKey = deliveryKey
