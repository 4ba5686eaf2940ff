//! A bounded cache of built byte strings (packaged segments): least recently added dropped
//! first once it holds more than its budget.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

pub struct ByteCache {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
}

impl ByteCache {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::default(),
        }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .get(key)
            .cloned()
    }

    /// Keeps `value` unless it alone would take a quarter of the budget.
    pub fn put(&self, key: String, value: Bytes) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if value.len() > self.budget / 4 || inner.map.contains_key(&key) {
            return;
        }
        inner.bytes += value.len();
        inner.order.push_back(key.clone());
        inner.map.insert(key, value);
        while inner.bytes > self.budget {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(v) = inner.map.remove(&old) {
                inner.bytes -= v.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_its_budget_dropping_the_oldest() {
        let c = ByteCache::new(100);
        c.put("a".into(), Bytes::from(vec![0; 20]));
        c.put("b".into(), Bytes::from(vec![0; 20]));
        assert_eq!(c.get("a").map(|b| b.len()), Some(20));
        for k in ["c", "d", "e", "f"] {
            c.put(k.into(), Bytes::from(vec![0; 20]));
        }
        assert!(c.get("a").is_none());
        assert!(c.get("f").is_some());
        // Too large for the budget: not kept.
        c.put("big".into(), Bytes::from(vec![0; 26]));
        assert!(c.get("big").is_none());
    }
}
