/**
 * The provenance tag every lens metric carries (papers.md §0): 'exact' only for what the paper
 * states or its authors' code computes, as lmdyn computes it; 'proposed' for our reading where the
 * paper is silent, for conventions that are ours, and for analyses beyond the paper.
 */
export type Tag = 'exact' | 'proposed';
