package console

import (
	"fmt"
	"net/http"
	"time"

	"github.com/keyledger/keyledger/client"
)

// chart is a bar chart of a key's validations, drawn server side as SVG
// (no script, nothing inline but the SVG itself).
type chart struct {
	Title          string
	Width, Height  int
	Bars           []bar
	Valid, Refused uint64
	From, To       string
}

// bar is one bucket: valid validations stacked under refused ones.
type bar struct {
	X, W           int
	ValidY, ValidH int
	RefusedY, RefH int
	Label          string
}

const chartHeight = 120

// buildChart lays out n buckets of size step ending with the one that
// holds now; buckets the API left out (no counts) are zero.
func buildChart(title string, buckets []client.UsageBucket, now time.Time, step time.Duration, n int) chart {
	end := now.UTC().Truncate(step)
	if step == 24*time.Hour {
		end = time.Date(now.UTC().Year(), now.UTC().Month(), now.UTC().Day(), 0, 0, 0, 0, time.UTC)
	}
	start := end.Add(-time.Duration(n-1) * step)
	valid, refused := make([]uint64, n), make([]uint64, n)
	c := chart{Title: title, Width: n * 12, Height: chartHeight}
	var most uint64 = 1
	for _, b := range buckets {
		i := int(b.Start.UTC().Sub(start) / step)
		if i < 0 || i >= n {
			continue
		}
		valid[i] += b.Valid
		for _, r := range b.Refused {
			refused[i] += r
		}
		most = max(most, valid[i]+refused[i])
	}
	layout := "2006-01-02 15:04"
	if step == 24*time.Hour {
		layout = "2006-01-02"
	}
	for i := range n {
		c.Valid += valid[i]
		c.Refused += refused[i]
		vh := int(valid[i] * (chartHeight - 4) / most)
		rh := int(refused[i] * (chartHeight - 4) / most)
		at := start.Add(time.Duration(i) * step)
		c.Bars = append(c.Bars, bar{X: i*12 + 1, W: 10, ValidY: chartHeight - vh, ValidH: vh, RefusedY: chartHeight - vh - rh, RefH: rh,
			Label: fmt.Sprintf("%s UTC: %d valid, %d refused", at.Format(layout), valid[i], refused[i])})
	}
	c.From, c.To = start.Format(layout), end.Format(layout)
	return c
}

type usageView struct {
	Key         client.Key
	Hours, Days chart
}

func (c *Console) keyUsage(w http.ResponseWriter, r *http.Request, api *client.Client) {
	k, err := api.GetKey(r.Context(), r.PathValue("key"))
	if err != nil {
		c.apiFailed(w, r, "Usage", "message", page{SignedIn: true}, err)
		return
	}
	now := time.Now()
	hours, err := api.KeyUsage(r.Context(), k.APIKey, client.UsageQuery{From: now.Add(-24 * time.Hour).Truncate(time.Hour), Bucket: "1h"})
	if err != nil {
		c.apiFailed(w, r, "Usage", "message", page{SignedIn: true}, err)
		return
	}
	days, err := api.KeyUsage(r.Context(), k.APIKey, client.UsageQuery{From: now.UTC().AddDate(0, 0, -30).Truncate(24 * time.Hour), Bucket: "1d"})
	if err != nil {
		c.apiFailed(w, r, "Usage", "message", page{SignedIn: true}, err)
		return
	}
	v := usageView{Key: k, Hours: buildChart("Last 24 hours, by hour", hours, now, time.Hour, 24),
		Days: buildChart("Last 30 days, by day", days, now, 24*time.Hour, 30)}
	c.render(w, r, http.StatusOK, "usage", page{Title: "Usage of " + keyTitle(k), SignedIn: true, Data: v})
}
