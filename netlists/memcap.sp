* Charge-controlled memcapacitor, Biolek-type (after Biolek, Biolkova & Kolka,
* "SPICE model of memcapacitor", Electronics Letters 46(7), 2010: the charge is the
* integral of the device current and the port voltage is v = q / C(x)), with a
* programming threshold so that read pulses leave the state alone.
*
*   terminals : p n        the device
*               qfc        its charge q, as a voltage in femtocoulomb (1 V = 1 fC)
*   charge    : q = integral of i dt (CCCS into a 1 F integrator, 1 TOhm to ground)
*   port      : v(p, n) = q / C(x)                             (no ddt(): well posed)
*   state     : x = x0 + v(dx), clipped to [0, 1] (integrator: 1 F, 1 TOhm to ground)
*   C(x)      = cmin + (cmax - cmin) * x                       [fF]
*   dx/dt     = k * i[fC/s] * f(x, i) * s(|v|)                 (charge-controlled)
*   f(x, i)   = 1 - (x - u(-i))^(2 p)                           Biolek window
*   s(|v|)    = 1 / (1 + exp(-(|v| - vt) / vs))                programming vs read regime
*   (u(-i) and |v| are smoothed over 1 nA and 1 mV; exponents are clamped to +-40)
*   The port is a voltage source: drive it through a resistance (a real driver has one).
*
* Parameters: x0, cmin_ff, cmax_ff [fF], k_per_fc [1/fC], vt [V], vs [V], p.
.subckt memcap p n qfc x0=0.5 cmin_ff=2 cmax_ff=20 k_per_fc=0.02 vt=2.5 vs=0.02 p=2
Vsense p p1 0
Fq 0 qfc Vsense 1e15
Cq qfc 0 1
Rq qfc 0 1e12
Cdx dx 0 1
Rdx dx 0 1e12
Bport p1 n V = v(qfc) / ({cmin_ff} + ({cmax_ff} - {cmin_ff}) * min(max({x0} + v(dx), 0), 1))
* sigmoids: upi ~ u(i), umi ~ u(-i) over 1 nA; the last factor stops the raw state at the
* bounds (the window alone leaves it drifting once C(x) is clipped)
Bdx 0 dx I = {k_per_fc} * 1e15 * i(Vsense)
+ * (1 - pwr(pwr(min(max({x0} + v(dx), 0), 1) - 1 / (1 + exp(min(max(i(Vsense) / 1n, -40), 40))), 2), {p}))
+ * 1 / (1 + exp(min(max(({vt} - sqrt(v(p1, n) * v(p1, n) + 1e-6)) / {vs}, -40), 40)))
+ * (1 - 1 / (1 + exp(min(max(i(Vsense) / 1n, -40), 40))) / (1 + exp(min(max(({x0} + v(dx)) / 1m, -40), 40)))
+      - 1 / (1 + exp(min(max(-i(Vsense) / 1n, -40), 40))) / (1 + exp(min(max((1 - {x0} - v(dx)) / 1m, -40), 40))))
.ends memcap
