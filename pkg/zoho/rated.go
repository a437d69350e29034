package zoho

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/hitl-bridge/hitl-bridge/pkg/hitl"
)

// SalesIQ's rating scales. The conversation.rated page
// (https://prewww.zoho.com/salesiq/help/webhook-events-conversation-rated-v1.html)
// shows entity.rating as a number (4 in its sample) beside entity.feedback,
// and a feedback-only delivery without rating; it names no scale. The
// happiness rating SalesIQ's chat shows has five levels (angry, sad,
// neutral, happy, excited) or three
// (https://www.zoho.com/salesiq/help/developer-guides/deluge-widgets-happiness-rating.html),
// the visitor feedback API takes "happy", "neutral" or "sad"
// (https://www.zoho.com/salesiq/help/developer-section/create-feedback-v2.html)
// and the feedback list answers rating{type:"smiley", value:"happy"}
// (https://www.zoho.com/salesiq/help/developer-section/conversation-feedback.html).
// So a number is read on the five-level scale (the sample's 4 does not fit
// three), the three names on the three-level scale, and angry and excited,
// which only the five-level scale has, on that scale.
const ratingScale = 5

var smileys = map[string]hitl.Rating{
	"sad": {Score: 1, OutOf: 3}, "neutral": {Score: 2, OutOf: 3}, "happy": {Score: 3, OutOf: 3},
	"angry": {Score: 1, OutOf: 5}, "excited": {Score: 5, OutOf: 5},
}

// parseRated maps conversation.rated to hitl.rated: the rating on its
// scale and the visitor's feedback as the comment. A delivery with
// feedback and no readable rating gives a rating with OutOf 0 (no score),
// so the comment is not lost; one with neither gives no event. The key
// holds what was rated, so the rating and a later feedback are two
// events while retries of either are one.
func parseRated(f *fields, conv string, e map[string]any) []hitl.ProviderEvent {
	r := hitl.Rating{Comment: strings.TrimSpace(f.str(e, "entity.", "feedback"))}
	if v, present := e["rating"]; present && v != nil {
		score, ok := readRating(v)
		if !ok {
			f.skip("entity.rating", v)
		}
		r.Score, r.OutOf = score.Score, score.OutOf
	}
	if r.OutOf == 0 && r.Comment == "" {
		f.missing("entity.rating")
		return nil
	}
	key := strings.Join([]string{"rated", conv, strconv.Itoa(r.Score), strconv.Itoa(r.OutOf), hitl.EventID(r.Comment)}, "/")
	return []hitl.ProviderEvent{{Key: key, Type: hitl.EventRated, Rating: &r}}
}

// readRating reads a rating as a number (or its text) on the five-level
// scale, a smiley name, or an object whose value is either.
func readRating(v any) (hitl.Rating, bool) {
	switch v := v.(type) {
	case json.Number:
		return numericRating(v.String())
	case string:
		s := strings.ToLower(strings.TrimSpace(v))
		if r, ok := smileys[s]; ok {
			return r, true
		}
		return numericRating(s)
	case map[string]any:
		if inner, ok := v["value"]; ok {
			return readRating(inner)
		}
	}
	return hitl.Rating{}, false
}

func numericRating(s string) (hitl.Rating, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > ratingScale {
		return hitl.Rating{}, false
	}
	return hitl.Rating{Score: n, OutOf: ratingScale}, true
}
