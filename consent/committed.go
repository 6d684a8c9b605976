package consent

// Committed is a tx in a committed block, as its submitter learns it: its ID, the
// height of the block, and the events its result carries.
type Committed struct {
	ID     TxID
	Height int64
	Events []Event
}

// MayBeBehind reports whether CheckTx refused a tx for naming something the checking
// node may not have committed yet: a record, consent or grant that another node
// committed a moment ago reaches this node a block later. Such a refusal is worth
// retrying once the node has committed a next height or two (node/client's
// RetryWhenBehind); only then does it stand.
func (c Code) MayBeBehind() bool {
	return c == CodeUnknownRecord || c == CodeUnknownConsent || c == CodeUnknownGrant
}
