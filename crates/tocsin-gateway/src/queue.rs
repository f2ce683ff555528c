//! A connection's outgoing queue: bounded, never blocks a producer, and allocates
//! nothing while empty.
//!
//! tokio's bounded `mpsc` allocates a 32-slot block and a cache-padded channel up
//! front — ~1.5 KB per connection, a third of an idle connection's budget, for a
//! queue that is empty almost all the time. This one is a `VecDeque` behind a mutex
//! (held only to push or pop) plus a `Notify` for the one consumer; the deque grows
//! with bursts and gives its memory back once drained.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// Capacity kept after a burst drains; more is handed back to the allocator.
const KEEP_AFTER_BURST: usize = 16;

/// The queue was full: the item was not queued.
#[derive(Debug, PartialEq, Eq)]
pub struct Full<T>(pub T);

/// A bounded multi-producer, single-consumer queue.
#[derive(Debug)]
pub struct Queue<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    ready: Notify,
}

impl<T> Queue<T> {
    /// An empty queue holding at most `capacity` items.
    pub fn new(capacity: usize) -> Queue<T> {
        Queue {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<T>> {
        // A panic while holding the lock cannot leave a VecDeque half-updated.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` unless the queue is full; wakes the consumer.
    pub fn try_push(&self, item: T) -> Result<(), Full<T>> {
        {
            let mut items = self.lock();
            if items.len() >= self.capacity {
                return Err(Full(item));
            }
            items.push_back(item);
        }
        // Stores a permit when the consumer is not waiting: no wake-up is lost.
        self.ready.notify_one();
        Ok(())
    }

    /// The next item, if one is queued.
    pub fn try_pop(&self) -> Option<T> {
        let mut items = self.lock();
        let item = items.pop_front();
        if items.is_empty() && items.capacity() > KEEP_AFTER_BURST {
            items.shrink_to(KEEP_AFTER_BURST);
        }
        item
    }

    /// Waits for the next item. For the single consumer; cancel-safe (an item is
    /// only taken when this returns).
    pub async fn pop(&self) -> T {
        loop {
            if let Some(item) = self.try_pop() {
                return item;
            }
            self.ready.notified().await;
        }
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_full_queue_refuses_and_keeps_order() {
        let queue = Queue::new(2);
        assert_eq!(queue.try_push(1), Ok(()));
        assert_eq!(queue.try_push(2), Ok(()));
        assert_eq!(queue.try_push(3), Err(Full(3)));
        assert_eq!(queue.try_pop(), Some(1));
        assert_eq!(queue.try_push(4), Ok(()));
        assert_eq!(
            (queue.try_pop(), queue.try_pop(), queue.try_pop()),
            (Some(2), Some(4), None)
        );
    }

    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let queue = Queue::new(1024);
        for i in 0..1000 {
            queue.try_push(i).expect("below capacity");
        }
        while queue.try_pop().is_some() {}
        assert!(queue.lock().capacity() <= KEEP_AFTER_BURST);
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn the_consumer_wakes_for_an_item_pushed_while_it_waits() {
        let queue = Arc::new(Queue::new(8));
        let consumer = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pop().await }
        });
        // Whether the push lands before or after the consumer starts waiting, the
        // permit or the wake-up delivers it.
        tokio::task::yield_now().await;
        queue.try_push("hello").expect("room");
        let item = tokio::time::timeout(Duration::from_secs(5), consumer)
            .await
            .expect("the consumer was woken")
            .expect("the consumer did not panic");
        assert_eq!(item, "hello");
    }

    #[tokio::test]
    async fn an_item_pushed_before_waiting_is_not_lost() {
        let queue = Queue::new(8);
        queue.try_push(7).expect("room");
        assert_eq!(queue.pop().await, 7);
        queue.try_push(8).expect("room");
        queue.try_push(9).expect("room");
        assert_eq!((queue.pop().await, queue.pop().await), (8, 9));
    }
}
