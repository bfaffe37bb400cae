package main

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A flood of one warning (every request while Redis is down) is sampled;
// info lines, one per thing done, are all kept.
func TestLoggerSamplesWarningFloodsOnly(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(sampleWarnings(core))
	for range 1000 {
		log.Warn("redis unavailable", zap.String("link_id", "x"))
		log.Info("link finished")
	}
	warns := logs.FilterMessage("redis unavailable").Len()
	infos := logs.FilterMessage("link finished").Len()
	if warns < 20 || warns > 40 || infos != 1000 {
		t.Fatalf("kept %d of 1000 warnings (want the first 20 and one in 100) and %d of 1000 info lines", warns, infos)
	}
	log.Error("another message")
	if logs.FilterMessage("another message").Len() != 1 {
		t.Fatal("a different message was sampled away")
	}
}
