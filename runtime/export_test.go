package runtime

// AllowTransactionTimeoutAboveSession lets a test run a transaction
// timeout at or above the session timeout, which New refuses otherwise, to
// show that exactly-once holds even then.
func AllowTransactionTimeoutAboveSession() Option {
	return func(c *config) { c.allowTxnAboveSession = true }
}
