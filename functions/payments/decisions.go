package main

import (
	"sync"

	"go.mongodb.org/mongo-driver/bson/primitive"
)

// decisions wakes the payment requests of this process that wait for orders' decision on a
// payment as soon as this process records it (events.go), instead of each waiter reading the
// database every 100 ms for up to outcomeWait: that polling was most of the CPU a payment cost
// (issue 16). The database stays the truth: a woken waiter reads it, and a decision recorded by
// another replica is still seen by a slower poll.
type decisions struct {
	mu      sync.Mutex
	waiters map[primitive.ObjectID][]chan struct{}
}

// watch returns a channel closed when payment id's decision is recorded here, and a function
// that stops watching (call it when done waiting).
func (d *decisions) watch(id primitive.ObjectID) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.waiters == nil {
		d.waiters = map[primitive.ObjectID][]chan struct{}{}
	}
	d.waiters[id] = append(d.waiters[id], ch)
	return ch, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		list := d.waiters[id]
		for i, c := range list {
			if c == ch {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(d.waiters, id)
		} else {
			d.waiters[id] = list
		}
	}
}

// decided wakes every waiter of payment id.
func (d *decisions) decided(id primitive.ObjectID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ch := range d.waiters[id] {
		close(ch)
	}
	delete(d.waiters, id)
}
