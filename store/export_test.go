package store

// The store's own key functions, for its external tests: they never spell a
// Redis key by hand.
var (
	KeyLink          = linkKey
	KeyLinkPassword  = linkCredKey
	KeyLinksIndex    = linksIndexKey
	KeyEvent         = eventKey
	KeyRetrySchedule = retryScheduleKey
	MemberOf         = refMember
)
