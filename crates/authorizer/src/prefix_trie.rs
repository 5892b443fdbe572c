//! `PrefixTrie`: the PREFIXED patterns of one resource type, as a radix (path-compressed) trie
//! over the names' bytes, so finding every pattern that is a prefix of a resource name costs
//! O(length of the name) and nothing per pattern on other resources.
//!
//! Why a radix trie and not Kafka's reverse-sorted set walked by jumps: the walk here is one
//! pass down the name with no backtracking, and path compression keeps the node count under
//! twice the number of patterns (so a 10,000-ACL rebuild allocates little). Insertion and lookup
//! are loops, never recursion, so a pathological chain of nested prefixes cannot overflow a
//! stack. Byte prefixes of UTF-8 names are exactly Java's `String.startsWith` on the same
//! text: a valid UTF-8 pattern can only be a byte prefix of a name at a char boundary.
//!
//! Built once (`insert`), then read-only: it is part of an immutable snapshot.

/// A trie edge label: `keys[key][start..end]`. Labels borrow the inserted keys instead of
/// owning copies, so splitting an edge is two index updates.
#[derive(Clone, Copy, Debug)]
struct Label {
    key: u32,
    start: u32,
    end: u32,
}

#[derive(Debug)]
struct Node {
    label: Label,
    /// Children by the first byte of their label (unique per node), sorted for binary search.
    children: Vec<(u8, u32)>,
    /// The value of the key that ends exactly at this node.
    value: Option<u32>,
}

/// Maps byte-string prefixes to `u32` values (indices into the owner's node table).
#[derive(Debug)]
pub(crate) struct PrefixTrie {
    keys: Vec<Box<[u8]>>,
    nodes: Vec<Node>,
}

impl PrefixTrie {
    pub(crate) fn new() -> Self {
        let root = Node {
            label: Label {
                key: 0,
                start: 0,
                end: 0,
            },
            children: Vec::new(),
            value: None,
        };
        PrefixTrie {
            keys: Vec::new(),
            nodes: vec![root],
        }
    }

    fn label(&self, label: Label) -> &[u8] {
        self.keys
            .get(label.key as usize)
            .and_then(|k| k.get(label.start as usize..label.end as usize))
            .unwrap_or(&[])
    }

    fn child(&self, node: u32, byte: u8) -> Option<u32> {
        let children = &self.nodes[node as usize].children;
        children
            .binary_search_by_key(&byte, |(b, _)| *b)
            .ok()
            .map(|i| children[i].1)
    }

    fn push_node(&mut self, label: Label, value: Option<u32>) -> u32 {
        self.nodes.push(Node {
            label,
            children: Vec::new(),
            value,
        });
        // The owner caps tries at u32::MAX entries (see `AclIndex::build`).
        (self.nodes.len() - 1) as u32
    }

    /// Sets the value of `key`, replacing an earlier value of the same key.
    pub(crate) fn insert(&mut self, key: &str, value: u32) {
        let key_idx = self.keys.len() as u32;
        self.keys.push(key.as_bytes().into());
        let key = key.as_bytes();
        let mut node = 0u32;
        let mut pos = 0usize;
        loop {
            let Some(&byte) = key.get(pos) else {
                self.nodes[node as usize].value = Some(value);
                return;
            };
            let Some(child) = self.child(node, byte) else {
                let leaf = self.push_node(
                    Label {
                        key: key_idx,
                        start: pos as u32,
                        end: key.len() as u32,
                    },
                    Some(value),
                );
                let children = &mut self.nodes[node as usize].children;
                let at = children.partition_point(|(b, _)| *b < byte);
                children.insert(at, (byte, leaf));
                return;
            };
            let label = self.nodes[child as usize].label;
            let common = self
                .label(label)
                .iter()
                .zip(&key[pos..])
                .take_while(|(a, b)| a == b)
                .count();
            if common == (label.end - label.start) as usize {
                node = child;
                pos += common;
                continue;
            }
            // The key leaves the edge part-way: split it at `common` with a middle node that
            // takes the child's place (same first byte, so the same slot in the sorted list).
            let split_at = label.start + common as u32;
            let middle = self.push_node(
                Label {
                    key: label.key,
                    start: label.start,
                    end: split_at,
                },
                None,
            );
            let rest = Label {
                key: label.key,
                start: split_at,
                end: label.end,
            };
            let rest_byte = self.label(rest).first().copied().unwrap_or(0);
            self.nodes[child as usize].label = rest;
            self.nodes[middle as usize]
                .children
                .push((rest_byte, child));
            if let Some(slot) = self.nodes[node as usize]
                .children
                .iter_mut()
                .find(|(b, _)| *b == byte)
            {
                slot.1 = middle;
            }
            node = middle;
            pos += common;
        }
    }

    /// Calls `visit` with the value of every inserted key that is a prefix of `name`
    /// (including `name` itself and the empty key), shortest first.
    pub(crate) fn for_each_prefix(&self, name: &str, mut visit: impl FnMut(u32)) {
        let name = name.as_bytes();
        let mut node = 0u32;
        let mut pos = 0usize;
        loop {
            if let Some(value) = self.nodes[node as usize].value {
                visit(value);
            }
            let Some(&byte) = name.get(pos) else { return };
            let Some(child) = self.child(node, byte) else {
                return;
            };
            let label = self.label(self.nodes[child as usize].label);
            if !name[pos..].starts_with(label) {
                return;
            }
            node = child;
            pos += label.len();
        }
    }

    /// Number of nodes (root included), for tests of path compression.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::PrefixTrie;

    fn prefixes(trie: &PrefixTrie, name: &str) -> Vec<u32> {
        let mut out = Vec::new();
        trie.for_each_prefix(name, |v| out.push(v));
        out
    }

    #[test]
    fn finds_every_prefix_shortest_first() {
        let mut trie = PrefixTrie::new();
        for (i, key) in ["foo", "f", "foobar", "fob", "bar", "foob"]
            .iter()
            .enumerate()
        {
            trie.insert(key, i as u32);
        }
        assert_eq!(prefixes(&trie, "foobarbaz"), vec![1, 0, 5, 2]);
        assert_eq!(prefixes(&trie, "foo"), vec![1, 0]);
        assert_eq!(prefixes(&trie, "fo"), vec![1]);
        assert_eq!(prefixes(&trie, "fob"), vec![1, 3]);
        assert_eq!(prefixes(&trie, "ba"), Vec::<u32>::new());
        assert_eq!(prefixes(&trie, "bar"), vec![4]);
        assert_eq!(prefixes(&trie, ""), Vec::<u32>::new());
    }

    #[test]
    fn empty_key_prefixes_everything_and_reinsert_replaces() {
        let mut trie = PrefixTrie::new();
        trie.insert("", 7);
        trie.insert("a", 1);
        trie.insert("a", 2);
        assert_eq!(prefixes(&trie, ""), vec![7]);
        assert_eq!(prefixes(&trie, "ab"), vec![7, 2]);
    }

    #[test]
    fn split_in_the_middle_of_an_edge_keeps_both_branches() {
        let mut trie = PrefixTrie::new();
        trie.insert("abcdef", 0);
        trie.insert("abcxyz", 1);
        trie.insert("abc", 2);
        assert_eq!(prefixes(&trie, "abcdefg"), vec![2, 0]);
        assert_eq!(prefixes(&trie, "abcxyz"), vec![2, 1]);
        assert_eq!(prefixes(&trie, "abcd"), vec![2]);
        // root, "abc", "def", "xyz": path compression.
        assert_eq!(trie.node_count(), 4);
    }

    #[test]
    fn multibyte_names_match_at_char_boundaries_only() {
        let mut trie = PrefixTrie::new();
        trie.insert("é", 0);
        trie.insert("ü", 1);
        // "é" and "ü" share their first UTF-8 byte: the split must not make "ü" a prefix of "é…".
        assert_eq!(prefixes(&trie, "éte"), vec![0]);
        assert_eq!(prefixes(&trie, "über"), vec![1]);
    }

    #[test]
    fn long_nested_chain_does_not_recurse() {
        let mut trie = PrefixTrie::new();
        let long = "a".repeat(20_000);
        for len in (1..=long.len()).step_by(7) {
            trie.insert(&long[..len], len as u32);
        }
        assert_eq!(prefixes(&trie, &long).len(), long.len().div_ceil(7));
    }
}
