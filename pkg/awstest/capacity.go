package awstest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hitl-bridge/hitl-bridge/pkg/store/dynamo"
)

// Meter is a dynamo.API that estimates the capacity units DynamoDB
// on-demand would bill for the store's calls, from the sizes of the items
// involved (moto_server's ConsumedCapacity is a constant, so it cannot
// tell). The rules, from the DynamoDB developer guide ("Item sizes and
// formats", "Read/write capacity units"):
//
//   - item size: the lengths of the attribute names and values; numbers
//     1 byte per two significant digits + 1; lists and maps 3 bytes + 1 per
//     element;
//   - a write costs 1 WRU per started KB of the larger of the item before
//     and after it; each index entry it puts or deletes costs 1 WRU more
//     (the store's indexes are KEYS_ONLY: entries are well under 1 KB; a
//     change of key is a delete and a put); an update that changes no index
//     key writes no index;
//   - a strongly consistent read costs 1 RRU per started 4 KB, 1 for a
//     missing item; an eventually consistent one half that; a Query, on the
//     total size of the items it reads; a BatchGetItem, per item.
//
// Writes are measured by reading the item before and after through peek,
// a client that is not counted; a transaction, as twice the table writes
// of its items. Operations the meter does not handle (a Query whose filter left
// items out) pass through and are listed in unmetered.
type Meter struct {
	dynamo.API
	peek    *dynamodb.Client
	table   string
	indexes []index

	mu        sync.Mutex
	units     Capacity
	unmetered map[string]int
}

// index is a global secondary index's key attributes.
type index struct {
	name     string
	keys     []string
	keysOnly bool
}

// Capacity is what the meter estimated.
type Capacity struct {
	WRU      float64 // table writes
	IndexWRU float64 // index entries written
	RRU      float64
	MaxItem  int // the largest item written, in bytes
}

// Minus returns the units since old; MaxItem is the largest item since
// the last resetMax.
func (c Capacity) Minus(old Capacity) Capacity {
	return Capacity{WRU: c.WRU - old.WRU, IndexWRU: c.IndexWRU - old.IndexWRU, RRU: c.RRU - old.RRU, MaxItem: c.MaxItem}
}

// NewMeter meters api's calls on table; peek reads items without being
// metered.
func NewMeter(ctx context.Context, api dynamo.API, peek *dynamodb.Client, table string) (*Meter, error) {
	out, err := peek.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return nil, fmt.Errorf("describe table %s: %w", table, err)
	}
	m := &Meter{API: api, peek: peek, table: table, unmetered: map[string]int{}}
	for _, g := range out.Table.GlobalSecondaryIndexes {
		ix := index{name: aws.ToString(g.IndexName), keysOnly: g.Projection != nil && g.Projection.ProjectionType == types.ProjectionTypeKeysOnly}
		for _, k := range g.KeySchema {
			ix.keys = append(ix.keys, aws.ToString(k.AttributeName))
		}
		m.indexes = append(m.indexes, ix)
	}
	return m, nil
}

// Snapshot returns the estimate so far and the calls not metered.
func (m *Meter) Snapshot() (Capacity, map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.units, maps.Clone(m.unmetered)
}

// ResetMax starts a new window for Capacity.MaxItem.
func (m *Meter) ResetMax() {
	m.mu.Lock()
	m.units.MaxItem = 0
	m.mu.Unlock()
}

func (m *Meter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := m.API.GetItem(ctx, in, optFns...)
	if err == nil {
		m.add(Capacity{RRU: readUnits(itemSize(out.Item), aws.ToBool(in.ConsistentRead))})
	}
	return out, err
}

func (m *Meter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (out *dynamodb.PutItemOutput, err error) {
	err = m.write(ctx, m.keyOf(in.Item),
		func() (err error) { out, err = m.API.PutItem(ctx, in, optFns...); return err },
		func() (map[string]types.AttributeValue, error) { return in.Item, nil })
	return out, err
}

func (m *Meter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (out *dynamodb.UpdateItemOutput, err error) {
	err = m.write(ctx, in.Key,
		func() (err error) { out, err = m.API.UpdateItem(ctx, in, optFns...); return err },
		func() (map[string]types.AttributeValue, error) { return m.item(ctx, in.Key) })
	return out, err
}

func (m *Meter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (out *dynamodb.DeleteItemOutput, err error) {
	err = m.write(ctx, in.Key,
		func() (err error) { out, err = m.API.DeleteItem(ctx, in, optFns...); return err },
		func() (map[string]types.AttributeValue, error) { return nil, nil })
	return out, err
}

// write meters a write of the item at key: call makes it, after gives the
// item it left (nil: deleted). A failed condition still costs the write of
// the item as it is.
func (m *Meter) write(ctx context.Context, key map[string]types.AttributeValue, call func() error, after func() (map[string]types.AttributeValue, error)) error {
	before, err := m.item(ctx, key)
	if err != nil {
		return err
	}
	if err := call(); err != nil {
		if _, failed := errors.AsType[*types.ConditionalCheckFailedException](err); failed {
			m.wrote(before, before)
		}
		return err
	}
	item, err := after()
	if err != nil {
		return err
	}
	m.wrote(before, item)
	return nil
}

// Query is billed on the items it reads, its filter notwithstanding:
// their total size, in started 4 KB.
func (m *Meter) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := m.API.Query(ctx, in, optFns...)
	if err == nil {
		size := 0
		for _, it := range out.Items {
			size += itemSize(it)
		}
		if int(out.ScannedCount) > len(out.Items) {
			m.skip("Query with a filter") // the items filtered out are not returned: their size is unknown
		}
		m.add(Capacity{RRU: readUnits(size, aws.ToBool(in.ConsistentRead))})
	}
	return out, err
}

// BatchGetItem is billed as one read per item.
func (m *Meter) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out, err := m.API.BatchGetItem(ctx, in, optFns...)
	if err == nil {
		for table, items := range out.Responses {
			consistent := aws.ToBool(in.RequestItems[table].ConsistentRead)
			for _, it := range items {
				m.add(Capacity{RRU: readUnits(itemSize(it), consistent)})
			}
		}
	}
	return out, err
}

// TransactWriteItems costs each item's table write twice (its index
// writes once); a cancelled transaction, as if every item were written
// unchanged.
func (m *Meter) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	keys := make([]map[string]types.AttributeValue, len(in.TransactItems))
	before := make([]map[string]types.AttributeValue, len(in.TransactItems))
	for i, a := range in.TransactItems {
		switch {
		case a.Put != nil:
			keys[i] = m.keyOf(a.Put.Item)
		case a.Update != nil:
			keys[i] = a.Update.Key
		case a.Delete != nil:
			keys[i] = a.Delete.Key
		case a.ConditionCheck != nil:
			keys[i] = a.ConditionCheck.Key
		}
		var err error
		if before[i], err = m.item(ctx, keys[i]); err != nil {
			return nil, err
		}
	}
	out, err := m.API.TransactWriteItems(ctx, in, optFns...)
	if _, cancelled := errors.AsType[*types.TransactionCanceledException](err); err != nil && !cancelled {
		return out, err
	}
	for i := range keys {
		after := before[i]
		if err == nil {
			var readErr error
			if after, readErr = m.item(ctx, keys[i]); readErr != nil {
				return nil, readErr
			}
		}
		m.wrote(before[i], after)
		m.add(Capacity{WRU: writeUnits(max(itemSize(before[i]), itemSize(after)))}) // the transaction's second unit
	}
	return out, err
}

func (m *Meter) skip(op string) {
	m.mu.Lock()
	m.unmetered[op]++
	m.mu.Unlock()
}

func (m *Meter) add(c Capacity) {
	m.mu.Lock()
	m.units.WRU += c.WRU
	m.units.IndexWRU += c.IndexWRU
	m.units.RRU += c.RRU
	m.units.MaxItem = max(m.units.MaxItem, c.MaxItem)
	m.mu.Unlock()
}

// wrote accounts for a write that turned before into after (nil: absent).
func (m *Meter) wrote(before, after map[string]types.AttributeValue) {
	size := max(itemSize(before), itemSize(after))
	c := Capacity{WRU: writeUnits(size), MaxItem: size}
	for _, ix := range m.indexes {
		c.IndexWRU += float64(indexWrites(ix, before, after))
	}
	m.add(c)
}

// indexWrites is how many entries of ix a write from before to after puts
// or deletes.
func indexWrites(ix index, before, after map[string]types.AttributeValue) int {
	in := func(item map[string]types.AttributeValue) bool {
		for _, k := range ix.keys {
			if item[k] == nil {
				return false
			}
		}
		return true
	}
	was, is := in(before), in(after)
	switch {
	case was && is:
		for _, k := range ix.keys {
			if scalar(before[k]) != scalar(after[k]) {
				return 2 // the entry moves: a delete and a put
			}
		}
		if !ix.keysOnly && itemSize(before) != itemSize(after) {
			return 1 // projected attributes changed (approximated by size)
		}
		return 0
	case was || is:
		return 1
	}
	return 0
}

// scalar is a key attribute's value as text.
func scalar(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return "S" + v.Value
	case *types.AttributeValueMemberN:
		return "N" + v.Value
	case *types.AttributeValueMemberB:
		return "B" + string(v.Value)
	}
	return fmt.Sprintf("%T", v)
}

func (m *Meter) keyOf(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]}
}

// item reads an item through the uncounted client.
func (m *Meter) item(ctx context.Context, key map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	out, err := m.peek.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(m.table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("capacity meter: read item: %w", err)
	}
	return out.Item, nil
}

// writeUnits is the WRUs of writing an item of size bytes.
func writeUnits(size int) float64 { return float64(max(1, (size+1023)/1024)) }

// readUnits is the RRUs of reading an item of size bytes (0: missing).
func readUnits(size int, consistent bool) float64 {
	u := float64(max(1, (size+4095)/4096))
	if !consistent {
		u /= 2
	}
	return u
}

// itemSize is an item's size as DynamoDB bills it.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return numberSize(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberL:
		return 3 + sumOf(v.Value, func(e types.AttributeValue) int { return 1 + valueSize(e) })
	case *types.AttributeValueMemberM:
		return 3 + len(v.Value) + itemSize(v.Value) // 1 a member, beside its name and value
	case *types.AttributeValueMemberSS:
		return sumOf(v.Value, func(s string) int { return len(s) })
	case *types.AttributeValueMemberNS:
		return sumOf(v.Value, numberSize)
	case *types.AttributeValueMemberBS:
		return sumOf(v.Value, func(b []byte) int { return len(b) })
	}
	return 0
}

// sumOf sums size over the elements of s.
func sumOf[T any](s []T, size func(T) int) int {
	n := 0
	for _, e := range s {
		n += size(e)
	}
	return n
}

// numberSize is 1 byte per two significant digits, plus 1.
func numberSize(s string) int {
	mantissa, _, _ := strings.Cut(strings.ToLower(s), "e")
	digits := strings.Trim(strings.NewReplacer("-", "", "+", "", ".", "").Replace(mantissa), "0")
	return (len(digits)+1)/2 + 1
}
