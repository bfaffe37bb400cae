package sandbox

import (
	"context"
)

// Account is what the sandbox knows of one account: its profile, its
// payment methods as a read returns them, and every write made to it.
type Account struct {
	IntegrationID  string          `json:"integrationId"`
	Username       string          `json:"username"`
	Profile        Profile         `json:"profile"`
	PaymentMethods []PaymentMethod `json:"paymentMethods"`
	WriteLog       []WriteRecord   `json:"writeLog"`
}

// Account returns the state of organization org's account username at
// integration, which exists for every username. It returns
// ErrUnknownIntegration for an integration the sandbox does not have.
func (s *Sandbox) Account(ctx context.Context, org, integration, username string) (*Account, error) {
	if !knownIntegration(integration) {
		return nil, ErrUnknownIntegration
	}
	ref := AccountRef{OrgID: org, Integration: integration, Username: username}
	a := newAccount(integration, username)
	items, err := s.store.SandboxItems(ctx, ref, ResourcePaymentMethod)
	if err != nil {
		return nil, err
	}
	written, err := decodeCards(items)
	if err != nil {
		return nil, err
	}
	cards := paymentMethods(a, written, s.now())
	log, err := s.store.SandboxWriteLog(ctx, ref)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = []WriteRecord{}
	}
	return &Account{IntegrationID: integration, Username: username, Profile: a.profile(), PaymentMethods: cards, WriteLog: log}, nil
}
