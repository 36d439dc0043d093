/**
 * The five papers the lenses follow (docs/papers.md gives full citations and, per lens, what is
 * exact and what is proposed). Outputs name a paper by `paperRef`, never by a file the user lacks.
 */
export type PaperKey = 'dmet' | 'sde' | 'gravity' | 'simplex' | 'coupling';

export interface Paper {
  authors: string;
  year: number;
  title: string;
  arxiv: string;
  url: string;
}

export const PAPERS: Record<PaperKey, Paper> = {
  dmet: {
    authors: 'Zhang & Dong',
    year: 2025,
    title:
      'Dynamic Manifold Evolution Theory: Modeling and Stability Analysis of Latent Representations in Large Language Models',
    arxiv: '2505.20340',
    url: 'https://arxiv.org/abs/2505.20340',
  },
  sde: {
    authors: 'Zhang',
    year: 2024,
    title: 'Unraveling Text Generation in LLMs: A Stochastic Differential Equation Approach',
    arxiv: '2408.11863',
    url: 'https://arxiv.org/abs/2408.11863',
  },
  gravity: {
    authors: 'Vyshnyvetska',
    year: 2025,
    title:
      'Information Gravity: A Field-Theoretic Model for Token Selection in Large Language Models',
    arxiv: '2504.20951',
    url: 'https://arxiv.org/abs/2504.20951',
  },
  simplex: {
    authors: 'Lee-Jenkins',
    year: 2025,
    title:
      'Manifold Trajectories in Next-Token Prediction: From Replicator Dynamics to Softmax Equilibrium',
    arxiv: '2508.21186',
    url: 'https://arxiv.org/abs/2508.21186',
  },
  coupling: {
    authors: 'Aubry, Meng, Sugolov & Papyan',
    year: 2025,
    title: 'Transformer Block Coupling and its Correlation with Generalization in LLMs',
    arxiv: '2407.07810',
    url: 'https://arxiv.org/abs/2407.07810',
  },
};

/** The full reference for `spec` fields: authors year, "title", arXiv:id. */
export function paperRef(key: PaperKey): string {
  const p = PAPERS[key];
  return `${p.authors} ${p.year}, "${p.title}", arXiv:${p.arxiv}`;
}

/** The short form for prose and titles: "Aubry et al. 2025, arXiv:2407.07810". */
export function cite(key: PaperKey): string {
  const p = PAPERS[key];
  const names = p.authors.split(/, | & /);
  const who = names.length > 2 ? `${names[0]} et al.` : p.authors;
  return `${who} ${p.year}, arXiv:${p.arxiv}`;
}
