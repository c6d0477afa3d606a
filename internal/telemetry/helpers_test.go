package telemetry_test

import (
	"fmt"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

func fmtSscan(line string, v *float64) (int, error) {
	return fmt.Sscan(strings.Fields(line)[1], v)
}

func hasWarden(mfs []*dto.MetricFamily) bool {
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "warden_") {
			return true
		}
	}
	return false
}
