"""Answer-checking cases for benchmarks/bench_math.py: (reference, response, expected equal?).

Written for this project in the style of real model outputs: plain numbers, MATH-style LaTeX answers,
free-text completions (chain of thought ending in a box, "Final Answer: ...", or a bare sentence).
The GSM8K part is built from ../shared/fixtures/math/gsm8k_test.jsonl at run time.
"""
from __future__ import annotations

NUMBERS = [
    ("5280", "5,280", True), ("2000", "2 000", True), ("300", "300.0", True), ("250.5", "250,50", True),
    ("3,75", "3.75", True), ("0.5", ".5", True), ("2500.25", "2,500.25", True), ("99.95", "$99.95", True),
    ("99.95", "99.95$", True), ("12.5", "it is not 7, it is 12.5\u20ac", True), ("0,222", "0.222", True),
    ("0,222", "222", False), ("7", "QWERT7Y", False), ("-3", "-3", True), ("48", "48 apples", True),
    ("1,2", "1.2", False), ("64", "The number is 64.", True), ("3/4", "0.75", True), ("-12/5", "-2.4", True),
    ("42", "no number in this sentence", False),
]

LATEX = [
    ("$7$", r"Answer \[ 7 \]", True), ("$7$", "Answer $ 7 $", True), ("$7$", r"Answer \( 7 \)", True),
    ("$7$", "Answer $ \n 7 \n $", False), ("$12$", r"Answer \( (10+2) \)", True),
    ("$2/5$", r"$\frac25 $", True), ("$2/5$", r"$\dfrac{2}{5}$", True), ("$2/5$", r"$\cfrac{2}{5}$", True),
    ("$2/5$", r"$\left( \frac{2}{5} \right)$", True), ("$2/5$", r"$\frac{2}{5} \text{ kg}$", True),
    ("$2/5$", r"$m = \frac{2}{5}$", True), (r"$\sqrt{5}$", r"$\sqrt5 $", True), ("$1$", r"$\frac4{4} $", True),
    (r"$\frac{2}{5}$", r"$\frac{2}{5}.$", True), (r"$\frac{2}{5}$", r"$\frac{2}{5},$", True),
    (r"$(3,4)$", r"$(3,4).$", True), ("$3$", r"$3^{4}.$", False), ("$1$", r"The answer is $1/4.$", False),
    ("$1, 2, 3$", "$1, 2, 3, ...$", False), (r"$4\sqrt{3}$", r"$\sqrt{48}$", True), ("$5$", r"$5\sqrt{2}$", False),
    (r"$\text{Maria}$", r"So $\boxed{\text{Maria}}$ wins.", True), (r"$60^\circ$", r"is $\boxed{60^\circ}$.", True),
    (r"$2\sqrt{7}$", r"$\sqrt{28} = \boxed{2\sqrt{7}}$", True), ("$431_6$", r"quotient $\boxed{431_6}$", True),
    ("$2101_3$", r"so $\boxed{2102_3}$", False), ("$431_6$", r"$\boxed{431}$", True),
    (r"$2 \pm \sqrt{7}$", r"$x = \boxed{2 \pm \sqrt{7}}$", True), (r"$\{2\pm\sqrt{3},-1\}$", r"$\boxed{\{-1, 2+\sqrt3, 2-\sqrt3\}}$", True),
    (r"$3 \cos x \sin y$", r"$\boxed{3 \sin y \cos x}$", True), ("$40$ meters", r"is $\boxed{40\textnormal{ meters}}.$", True),
    (r"$[-2, 0) \cup (0, 3]$", r"$\boxed{[-2, 0) \cup (0, 3]}$", True), (r"$\frac{7}{3}\pi$", r"$\boxed{\frac73\pi}$", True),
    (r"$12\mbox{ in}^2$", r"$\boxed{12\mbox{ in}^2}$", True), (r"$\text{B}$", "$B$", True), (r"\(\boxed{\text{D}}\).", r"$\boxed{\text{(D)}}.$", True),
    (r"\boxed{22222222200}", r"is $\boxed{22,\! 222,\! 222,\! 200}$", True), (r"\boxed{45678}", r"is $\boxed{45,\! 678}$", True),
    (r"\boxed{45678}", r"is $\boxed{45, 678}$", False), (r"$\boxed{3}\boxed{4}$", r"$\boxed{3,4}$", True),
    (r"$\\left(\\frac{2}{7},\\frac{5}{7}\\right)$", r"$(t,u) = \boxed{\left( \frac{2}{7}, \frac{5}{7} \right)}.$", True),
    ("$5$", "$5\\", True), ("$5$", "\\", False),
]

PERCENT = [
    (r"$35\%$", "35 percent", True), (r"$35\%$", "35 pct", True), (r"$35\%$", "35 %", True),
    (r"$35\%$", r"$\boxed{35 percentage}", True), (r"$35\%$", "35", True), ("$0.35$", "35", False),
    ("$35/100$", "35", False), (r"$35\%$", "0.35", True), (r"$35\%$", r"$\boxed{3.5\%}$", False),
]

RELATIONS = [
    ("$x >= 4$", r"Therefore $x \geq 4$ is the solution.", True), ("$x < 9$", r"We find $x \lt 9$.", True),
    (r"$x \leq 1$", "Thus $x <= 1$.", True), ("$x != 6$", r"We get $x \neq 6$.", True),
    ("$x > 4$", "so $x < 4$", False), (r"$x \geq 4$", r"$x \leq 4$", False), (r"$x \leq 4$", r"$4 \geq x$", True),
    ("$x < 2$", "$-x > -2$", True), ("$x < 2$", "$x > -2$", False), (r"$[4, \infty)$", r"$x \geq 4$", False),
    (r"$x \geq 4$", r"$[4, \infty)$", True), (r"$-3 \le x \le 5$", r"$x \in [-3,5]$", True),
    ("$y = 9$", "$y = 4+4+1 = 3 = 9$", True), ("$8 = 5a+b$", "$5a+b$", False), ("$y = 1/4$", r"$y = 2+2 = 1/4 \approx 5$", True),
    ("$9$", "$y=9$", True), ("$9$", r"$y\approx9$", True), ("$1/7$", r"$y=1/7\approx0.14$", True),
    ("$b + 2w = 0$", "$0$", False), ("$2 = \\qqq = y = 0$", "$0$", True), ("$3a + c = 1$", "$1$", False),
    ("$m=2$", "$2$", True), ("$w = 2 + 2 = 4$", "$w = 1+1 = 4$", True), ("$3x+6y-9=0$", "$y=-\\frac{1}{2}x+\\frac{3}{2}$", True),
    ("$x^2/9 + y^2/4 = 1$", "$x^2/36 + y^2/16 = 1/4$", True), ("$12x+5y-7z+3=0$", "$-12x-5y+7z-3=0$", True),
    (r"$$|PQ|=6$$", "$$6$$", True), (r"$$P:Q=6$$", "$$6$$", True), (r"$$g(t)=6$$", "$$6$$", True),
    ("$(p,q)=(3,2)$", "$(3,2)$", True), ("$(3,2)$", "$(p, q) = (2, 3)$", False), ("$7:32$", r"$\frac{7}{32}$", True),
    ("$7:32$", "$14:64$", True), ("$11:00$", "$1:00$", False), ("$11:00$", "$11:00$", True), ("$x = 2, y = 3$", "$x = 3, y = 2$", False),
]

MATRICES = [
    (r"$\begin{pmatrix}2 & 0 \\ 0 & 2\end{pmatrix}$", r"The matrix is $ \begin{pmatrix}2 & 0 \\ 0 & 2\end{pmatrix} $.", True),
    (r"$\begin{bmatrix}1 & 1 \\1 & 1\end{bmatrix}$", r"So: $ \begin{pmatrix}1 & 1 \\1 & 1\end{pmatrix} $", True),
    (r"$\begin{pmatrix}5 & 6 \\7 & 8\end{pmatrix}$", r"$ \left[\begin{array}{cc}5 & 6 \\7 & 8\end{array}\right] $", True),
    (r"$\begin{pmatrix}3 & 5 \\ 7 & 9\end{pmatrix}$", r"The sum is $\begin{pmatrix}1 & 2 \\ 3 & 4\end{pmatrix} + \begin{pmatrix}2 & 3 \\ 4 & 5\end{pmatrix}$", True),
    (r"$\begin{pmatrix}2 & 1 \\ 4 & 3\end{pmatrix}$", r"$\begin{pmatrix}1 & 2 \\ 3 & 4\end{pmatrix} \begin{pmatrix}0 & 1 \\ 1 & 0\end{pmatrix}$", True),
    (r"$\begin{pmatrix}1 & 2 \\ 3 & 4\end{pmatrix}$", r"$\begin{pmatrix}0 & 1 \\ 1 & 0\end{pmatrix} \begin{pmatrix}1 & 2 \\ 3 & 4\end{pmatrix}$", False),
    (r"$\begin{pmatrix}1 & 2 \\ 3 & 4\end{pmatrix}$", r"The matrix is $\begin{pmatrix}1 & 2 \\ 3 & 6\end{pmatrix}$", False),
    (r"$\begin{pmatrix} 4 \\ -1 \end{pmatrix}$", r"$\boxed{(4, -1)}$", True),
]

SETS = [
    ("$[0,2)$", "$[0,2)$", True), ("$[0,5)$", "$[0,2)$", False), ("$(0,5)$", "$[0,5)$", False),
    (r"$$\boxed{3}, \boxed{5}, \boxed{11}$$", r"$${3, 5, 11}$$", True), (r"$$-120 < b < 7$$", r"$$(-120, 7)$$", True),
    (r"$$b_2 = 5, b_{10} = 21$$", r"$$\boxed{b_{10} = 21, \quad b_2 = 5}$$", True), (r"$$(1, 1), (2, 4), (4, 2)$$", r"$$\boxed{(2, 4), (1, 1), (4, 2)}$$", True),
    (r"$$(2, -\infty)$$", r"$$(2, -\infty)$$", True), (r"$$0.35 \text{ euros}$$", r"$$\boxed{0.35 \text{ euros}}$$", True),
    (r"$$(4, 9), (9, 4)$$", r"$$\boxed{(x, y) = (4, 9) \quad \text{and} \quad (9, 4)}$$", True), (r"$$5 \text{ and } 9$$", r"$$\boxed{5 \text{ and } 9}$$", True),
    (r"$$(1, 4), (5, 4)$$", r"$$\boxed{(1, 4)} \quad \text{and} \quad \boxed{(5, 4)}$$", True), (r"$$(2, 2), (3, 3)$$", r"$$\boxed{(2, 2)} \text{ for part (a) and } \boxed{(3, 3)}$$", True),
    (r"$$m = 12, k = 3$$", r"$$\boxed{m = 12} \quad \text{and} \quad \boxed{k = 3}$$", True), (r"$$m = 12, k = 3$$", r"$$m = 3, k = 12$$", False),
    ("$n=2, 4, 6$", "$n=2, 4, 6$", True), ("$n=2, 4, 6$", "$n=1, 4, 6$", False), ("$P = (2, 3)$", "$P = (2, 3.5)$", False),
    (r"$G_n = \sum_{k=0}^{n-1} G_k G_{n-k-1}$", r"$G_n = \sum_{k=0}^{n-1} G_{n-k-1} G_k$", True),
    (r"$G_n = \sum_{k=0}^{n-1} G_k G_{n-k-1}$", r"$G_n = \sum_{k=0}^{n-2} G_k G_{n-k-2}$", False),
    ("$17, 33, and 60$", r"$17, 33, \text{ and } 60$", True), ("$17, 33, and 60$", "$17, 34, and 60$", False),
    (r"$\pm 1999$", "$1999$", False), (r"$\pm 1999$", "${-1999, 1999}$", True), ("$(2,5)$", "${2,5}$", False),
    (r"$$\boxed{1}$$ \boxed{77}", "$$77$$", True), (r"\boxed{4} cats and \boxed{6} dogs", r"$\boxed{4,6}$", True),
    (r"\boxed{4} yes yes yes yes \boxed{6}", r"$\boxed{4,6}$", False), (r"\boxed{1}, then corrected: \boxed{2}", "2", True),
    (r"$x_1 = 3 + \sqrt{2}, x_2 = 3 - \sqrt{2}$", r"$\boxed{3+\sqrt{2}} \quad \text{and} \quad \boxed{3-\sqrt{2}}$", True),
]

FREE_TEXT = [
    ("$3/5$", "Each draw is independent, so P = (3/4) * (4/5) P = 3/5 Therefore, the probability is 3/5. <|im_start|>user", True),
    ("$15$", r"We need $d = \frac{60}{n}$ to be an integer. Therefore, there are 15 such sequences that work. I hope it is correct.", True),
    (r"$(5,2)$", r"Solving gives $x = 5$ and $y = 2$. So the ordered pair is $(5, 2)$. <|im_start|>user", True),
    (r"$[0,3)$", r"The domain needs $x \geq 0$ and $x < 3$. Final Answer: The final answer is $(0, 3)$. I hope it is correct.", False),
    ("$9$", r"Final Answer: The area of $ABCD$ is 9. I hope it is correct.", True),
    ("4500001", r"Summing gives $4,\!500,\!001$. Final Answer: The final answer is 4,500,001. I hope it is correct.", True),
    ("$2$", r"Final Answer: Ann planted the tree 2 days ago. I hope it is correct.", True),
    ("$27$", r"Final Answer: The largest $k$ is 27.", True),
    ("$50%$", r"Halving one error doubles the other, so the error grows by 50%.", True),
    ("$30.25$", r"The price is \$30.25 per kilo. Final Answer: The final answer is 30.25.", True),
    ("$10660$", r"First $0.05 \cdot 10,000 = \boxed{500}$ then $0.03 \cdot 10,500 = \boxed{315}$. Final Answer: The final answer is $10,815$. I hope it is correct.", False),
    ("$10815$", r"First $0.05 \cdot 10,000 = \boxed{500}$ then $0.03 \cdot 10,500 = \boxed{315}$. Final Answer: The final answer is $10,815$. I hope it is correct.", True),
    (r"$(-4, 7)$", r"The solution is \( x \in (-4, 7) \). Final Answer: The final answer is \((-4, 7)\). I hope it is correct.", True),
    ("$25\\%$", r"so $\frac{1}{4} \times 100\% = \boxed{25\%}$ Final Answer: The final answer is $25\%$. I hope it is correct.", True),
    ("$12$", r"Therefore the answer is $\boxed{12}$ and $13$ is not possible.", True),
    ("$315$", r"<think> 7*45 = 315, wait let me check \boxed{300} no... </think> The total is \(\boxed{315}\).", True),
    ("$1,-3$", r"**Final Answer** The integers are \boxed{-3} and \boxed{1}.", True),
    ("$4.5$", r"We compute the mean: $\frac{9}{2}$. Final Answer: The final answer is $4.5$. I hope it is correct.", True),
    ("$8$", "I am not sure what the answer is.", False),
    ("$144$", r"There are $12 \times 12 = \boxed{144}$ ways.", True),
    ("$20$", r"So $x = 1/5$, or $\boxed{20}$ percent.", True),
    ("$2$", "The final answer is AZYUK2A.", False),
]

CASES = {"numbers": NUMBERS, "latex": LATEX, "percent": PERCENT, "relations": RELATIONS,
         "matrices": MATRICES, "sets and lists": SETS, "free text": FREE_TEXT}
