package outbox

import (
	"encoding/json"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// Notifier sends the core NATS notices that wake a process at once. They are
// not persisted: each has a slower path through Redis in case one is lost.
type Notifier struct {
	nc  *nats.Conn
	log *zap.Logger
}

// NewNotifier returns a notifier on nc; log may be nil.
func NewNotifier(nc *nats.Conn, log *zap.Logger) *Notifier {
	if log == nil {
		log = zap.NewNop()
	}
	return &Notifier{nc: nc, log: log.Named("notify")}
}

// Cancel wakes the worker running a link to stop it.
func (n *Notifier) Cancel(org, linkID string) { n.control(SubjectCancel, org, linkID) }

// Input wakes the worker running a link to take the end user's answer.
func (n *Notifier) Input(org, linkID string) { n.control(SubjectInput, org, linkID) }

// Wake tells dispatchers that a delivery is due now.
func (n *Notifier) Wake() {
	if err := n.nc.Publish(SubjectWake, nil); err != nil {
		n.log.Debug("wake dispatchers", zap.Error(err))
	}
}

func (n *Notifier) control(subject, org, linkID string) {
	b, _ := json.Marshal(Control{LinkID: linkID, OrgID: org})
	if err := n.nc.Publish(subject, b); err != nil {
		n.log.Warn("notify worker", zap.String("subject", subject), zap.Error(err))
	}
}

// Messenger is a Publisher and a Notifier together: what the API needs of
// messaging.
type Messenger struct {
	*Publisher
	*Notifier
}
