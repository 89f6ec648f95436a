//! The dependency graph between units (`requires` + `wants` + `after`): cycle detection.
//!
//! Units in a cycle can never start (each waits for the other), so the supervisor reports the cycle
//! and marks its members failed instead of waiting forever.

use std::collections::BTreeMap;

use cirrus_init_config::UnitFile;

/// Every dependency cycle among `units`, each as its member names, sorted. Dependencies on missing
/// units are ignored here (the supervisor handles them).
pub fn find_cycles(units: &[UnitFile]) -> Vec<Vec<String>> {
    let index: BTreeMap<&str, usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.name.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = units
        .iter()
        .map(|u| {
            u.requires
                .iter()
                .chain(&u.wants)
                .chain(&u.after)
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    let mut tarjan = Tarjan {
        edges: &edges,
        index: vec![None; units.len()],
        low: vec![0; units.len()],
        on_stack: vec![false; units.len()],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in 0..units.len() {
        if tarjan.index[v].is_none() {
            tarjan.visit(v);
        }
    }
    let mut cycles: Vec<Vec<String>> = tarjan
        .components
        .into_iter()
        .filter(|c| c.len() > 1 || c.iter().any(|&v| edges[v].contains(&v)))
        .map(|c| {
            let mut names: Vec<String> = c.into_iter().map(|v| units[v].name.clone()).collect();
            names.sort();
            names
        })
        .collect();
    cycles.sort();
    cycles
}

/// Tarjan's strongly connected components.
struct Tarjan<'a> {
    edges: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for i in 0..self.edges[v].len() {
            let w = self.edges[v][i];
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(w_index) if self.on_stack[w] => self.low[v] = self.low[v].min(w_index),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn unit(name: &str, requires: &[&str], after: &[&str]) -> UnitFile {
        let text = format!("exec = \"/bin/true\"\nrequires = {requires:?}\nafter = {after:?}\n");
        UnitFile::parse(Path::new(&format!("/u/{name}.toml")), &text).unwrap()
    }

    #[test]
    fn no_cycles_in_a_dag() {
        let units = [
            unit("a", &[], &[]),
            unit("b", &["a"], &[]),
            unit("c", &["a", "missing"], &["b"]),
        ];
        assert!(find_cycles(&units).is_empty());
    }

    #[test]
    fn finds_cycles_through_requires_and_after() {
        let units = [
            unit("a", &["b"], &[]),
            unit("b", &[], &["c"]),
            unit("c", &["a"], &[]),
            unit("d", &["a"], &[]),
            unit("x", &["y"], &[]),
            unit("y", &[], &["x"]),
        ];
        assert_eq!(find_cycles(&units), [vec!["a", "b", "c"], vec!["x", "y"]]);
    }
}
